"""Test-wide settings: offline, quiet, throwaway homes for Prefect; nothing touches the user's stores."""

import os
import tempfile

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="unlearn-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
