"""Puts tests/faults on sys.path so the tests import the shared harness."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
