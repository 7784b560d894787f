#!/usr/bin/env python
"""Screenshot the MLflow model registry UI for a registered model (for docs/README).

Starts ``mlflow ui`` on a free 127.0.0.1 port against a *copy* of the given
SQLite store, drives headless Chromium through the DevTools protocol (a tiny
stdlib websocket client, no extra packages) and writes:

* ``--out``          the registered-model page (versions table with tags + aliases)
* ``--version-out``  one model-version page (full tag table + aliases)

Example::

    .venv/bin/python scripts/mlflow_screenshot.py --store sqlite:///mlflow.db \
        --model digits-supervised --out docs/img/mlflow-model-versions.png

Requires a Chromium binary (Debian: ``apt-get install chromium``). Plain
``chromium --screenshot`` is not used because MLflow 3 auto-opens its Assistant
side panel on first load from localhost and clips the version tag table in a
scroll box; over DevTools we pre-seed localStorage, un-clip the table and wait
for the data to render instead of guessing a virtual-time budget.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]

# Runs before any page script: mark the Assistant panel as already auto-opened
# (MLflow >= 3.x opens it on first visit from localhost) and keep it closed.
PRELOAD_JS = """
try {
  localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
  localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
} catch (e) {}
"""

# Hide the floating Assistant button and let scroll-boxed tables grow.
STYLE_JS = """
(() => {
  const s = document.createElement('style');
  s.textContent = `[data-assistant-ui]{display:none !important}`;
  document.head.appendChild(s);
  // Un-clip inner scroll boxes (e.g. the model-version tag table) so every
  // row is in the picture; the page's own scroll container is handled by
  // growing the viewport instead.
  for (const el of document.querySelectorAll('main *, [role=main] *, table, div')) {
    const cs = getComputedStyle(el);
    if ((cs.overflowY === 'auto' || cs.overflowY === 'scroll') &&
        el.scrollHeight > el.clientHeight + 2 &&
        el.clientHeight < 0.6 * window.innerHeight &&
        cs.maxHeight !== 'none') {
      el.style.maxHeight = 'none';
      el.style.overflowY = 'visible';
    }
  }
  return true;
})()
"""

# Height the page would need to show everything without page-level scrolling.
NEEDED_HEIGHT_JS = """
(() => {
  let h = document.documentElement.scrollHeight;
  for (const el of document.querySelectorAll('div, main, section')) {
    const cs = getComputedStyle(el);
    if ((cs.overflowY === 'auto' || cs.overflowY === 'scroll') &&
        el.scrollHeight > el.clientHeight + 2) {
      h = Math.max(h, window.innerHeight + (el.scrollHeight - el.clientHeight));
    }
  }
  return Math.ceil(h);
})()
"""


# --------------------------------------------------------------------------- #
# minimal websocket + CDP client (RFC 6455 text frames, client-side masking)
# --------------------------------------------------------------------------- #
class CDP:
    def __init__(self, ws_url: str, timeout: float = 30.0):
        u = urllib.parse.urlsplit(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed during handshake")
            buf += chunk
        head, self._buf = buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake failed: {head[:200]!r}")
        self._id = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _send(self, payload: bytes, opcode: int = 0x1) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _recv_message(self) -> dict:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x8:
                raise ConnectionError("DevTools sent close frame")
            if opcode == 0x9:
                self._send(data, 0xA)
                continue
            if opcode in (0x0, 0x1, 0x2):
                parts.append(data)
                if b0 & 0x80:
                    return json.loads(b"".join(parts))

    def call(self, method: str, **params):
        self._id += 1
        my_id = self._id
        self._send(json.dumps({"id": my_id, "method": method, "params": params}).encode())
        while True:
            msg = self._recv_message()
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def find_chromium(explicit: str | None) -> str:
    for name in ([explicit] if explicit else []) + [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]:
        path = shutil.which(name) if name else None
        if path:
            return path
    sys.exit("no chromium found: apt-get install chromium (or pass --chromium PATH)")


def stop(proc: subprocess.Popen | None, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    # Kill the whole process group we created (mlflow ui spawns uvicorn workers,
    # chromium spawns renderers); only ever our own child's group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)
        proc.wait(timeout=5)
    print(f"stopped {name} (pid {proc.pid})", file=sys.stderr)


def sqlite_path(store: str) -> Path:
    if not store.startswith("sqlite:///"):
        sys.exit("--store must be a sqlite:///PATH URI")
    return Path(store[len("sqlite:///") :]).resolve()


def default_version(db: Path, model: str) -> str:
    """Version carrying the first alias (e.g. production), else the latest one."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT version FROM registered_model_aliases WHERE name=? ORDER BY alias LIMIT 1",
            (model,),
        ).fetchone()
        if row is None:
            row = con.execute(
                "SELECT MAX(version) FROM model_versions WHERE name=?", (model,)
            ).fetchone()
    finally:
        con.close()
    if row is None or row[0] is None:
        sys.exit(f"registered model {model!r} has no versions in {db}")
    return str(row[0])


def shrink_png(path: Path, max_bytes: int) -> None:
    if path.stat().st_size <= max_bytes:
        return
    try:
        from PIL import Image
    except ImportError:
        print(f"warning: {path} is {path.stat().st_size} bytes and PIL is missing", file=sys.stderr)
        return
    with Image.open(path) as im:
        pal = im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    pal.save(path, optimize=True)


# --------------------------------------------------------------------------- #
# capture
# --------------------------------------------------------------------------- #
def capture(
    cdp: CDP,
    url: str,
    out: Path,
    width: int,
    height: int,
    must_contain: list[str],
    timeout: float,
    max_height: int,
) -> None:
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    # Hash routes on the same origin don't reload the page; force a real load.
    cdp.call("Page.navigate", url="about:blank")
    cdp.call("Page.navigate", url=url)
    checks = " && ".join(f"document.body.innerText.includes({json.dumps(s)})" for s in must_contain)
    deadline = time.monotonic() + timeout
    while True:
        ready = cdp.evaluate(f"(() => !!document.body && {checks or 'true'})()")
        if ready:
            break
        if time.monotonic() > deadline:
            text = cdp.evaluate("document.body ? document.body.innerText.slice(0, 500) : ''")
            raise TimeoutError(f"{url}: page never showed {must_contain}; it shows: {text!r}")
        time.sleep(0.5)
    time.sleep(1.0)  # let late XHRs (aliases, tags) settle
    cdp.evaluate(STYLE_JS)
    time.sleep(0.3)
    needed = min(max(height, int(cdp.evaluate(NEEDED_HEIGHT_JS) or height)), max_height)
    if needed != height:
        cdp.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=needed, deviceScaleFactor=1, mobile=False
        )
        time.sleep(0.8)
    shot = cdp.call("Page.captureScreenshot", format="png")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {out} ({width}x{needed}) from {url}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="sqlite:///PATH/mlflow.db (copied; never modified)")
    ap.add_argument("--model", required=True, help="registered model name")
    ap.add_argument("--out", required=True, type=Path, help="PNG of the registered-model page")
    ap.add_argument(
        "--version-out",
        type=Path,
        help="PNG of one model-version page (default: mlflow-model-version.png next to --out; '' to skip)",
    )
    ap.add_argument("--version", help="model version for --version-out (default: aliased, else latest)")
    ap.add_argument("--chromium", help="chromium binary (default: first on PATH)")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=900, help="minimum height; grows to fit the content")
    ap.add_argument("--max-height", type=int, default=2400)
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for server / page data")
    ap.add_argument("--max-bytes", type=int, default=400_000, help="palette-quantize PNGs larger than this")
    args = ap.parse_args(argv)

    db = sqlite_path(args.store)
    if not db.is_file():
        sys.exit(f"no such store: {db}")
    artifacts = db.parent / "mlruns"
    version = args.version or default_version(db, args.model)
    version_out = args.version_out
    if version_out is None:
        version_out = args.out.with_name("mlflow-model-version.png")
    elif str(version_out) == "":
        version_out = None
    chromium = find_chromium(args.chromium)
    quoted = urllib.parse.quote(args.model, safe="")

    server = browser = None
    cdp = None
    with tempfile.TemporaryDirectory(prefix="mlflow-shot-") as tmp:
        tmpdir = Path(tmp)
        # Serve a consistent copy so the UI (and any schema check) never touches the original.
        copy = tmpdir / "mlflow.db"
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        port = free_port()
        cmd = [
            sys.executable, "-m", "mlflow", "ui",
            "--backend-store-uri", f"sqlite:///{copy}",
            "--default-artifact-root", str(artifacts if artifacts.is_dir() else tmpdir / "mlruns"),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
        ]  # fmt: skip
        try:
            server = subprocess.Popen(
                cmd,
                cwd=tmpdir,
                stdout=(tmpdir / "mlflow-ui.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/health", args.timeout, server)
            print(f"mlflow ui up at {base} (pid {server.pid})", file=sys.stderr)

            profile = tmpdir / "chromium-profile"
            profile.mkdir()
            browser = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 f"--window-size={args.width},{args.height}", "about:blank"],
                stdout=subprocess.DEVNULL,
                stderr=(tmpdir / "chromium.log").open("wb"),
                start_new_session=True,
            )  # fmt: skip
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + args.timeout
            while not (port_file.is_file() and port_file.read_text().strip()):
                if browser.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chromium did not open a DevTools port:\n"
                                       + (tmpdir / "chromium.log").read_text(errors="replace")[-2000:])  # fmt: skip
                time.sleep(0.2)
            dport = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{dport}/json/list", timeout=10) as r:
                targets = json.load(r)
            page = next(t for t in targets if t.get("type") == "page")
            cdp = CDP(page["webSocketDebuggerUrl"], timeout=args.timeout)
            cdp.call("Page.enable")
            cdp.call("Runtime.enable")
            cdp.call("Page.addScriptToEvaluateOnNewDocument", source=PRELOAD_JS)

            capture(
                cdp, f"{base}/#/models/{quoted}", args.out, args.width, args.height,
                [args.model, f"Version {version}"], args.timeout, args.max_height,
            )  # fmt: skip
            shrink_png(args.out, args.max_bytes)
            if version_out is not None:
                capture(
                    cdp, f"{base}/#/models/{quoted}/versions/{version}", version_out,
                    args.width, args.height, [f"Version {version}", "Tags"],
                    args.timeout, args.max_height,
                )  # fmt: skip
                shrink_png(version_out, args.max_bytes)
        except Exception:
            log = tmpdir / "mlflow-ui.log"
            if log.is_file():
                print("---- mlflow ui log (tail) ----", file=sys.stderr)
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            if cdp is not None:
                cdp.close()
            stop(browser, "chromium")
            stop(server, "mlflow ui")
    for p in (args.out, version_out):
        if p is not None:
            print(f"{p}: {p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
