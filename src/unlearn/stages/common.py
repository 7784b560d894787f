"""What every stage shares: argument parsing, logging set-up and one clear error line on bad input."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from unlearn.config import Params, ParamsError, load_params


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    return p


def run(main: Callable[[argparse.Namespace, Params], None], args: argparse.ArgumentParser) -> None:
    """Parse arguments, configure logging, load params, run ``main``; bad input exits 2 with one error line."""
    ns = args.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("mlflow", "alembic", "urllib3", "git", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("torch._export").setLevel(logging.ERROR)
    try:
        params = load_params(ns.params)
        main(ns, params)
    except (ParamsError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
