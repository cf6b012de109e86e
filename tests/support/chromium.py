"""Headless Chromium for the report tests, driven through the DevTools protocol.

`python -m tests.support.chromium ensure-binaries` (called by `make test`) installs Debian's
`chromium` package when no browser is found, as `tests/support/pg.py` does for PostgreSQL. The
browser runs with a fresh profile in a temp folder, no sandbox (the tests run as root), no GPU and
no background networking, so the only requests it makes are the page's own: `Page.requests`
lists every one that is not a `file:` or `data:` URL.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--mute-audio", "--font-render-hinting=none"]
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
# Arial-metric fonts: the report's charts are laid out with Arial metrics
PACKAGES = ["chromium", "fonts-dejavu-core", "fonts-liberation"]


def find_browser() -> str | None:
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _fonts_missing() -> bool:
    return not glob.glob("/usr/share/fonts/truetype/liberation*/LiberationSans-Regular.ttf")


def ensure_binaries() -> str:
    browser = find_browser()
    if browser is None or _fonts_missing():
        if os.geteuid() != 0:
            sys.exit("Chromium not found and not root: install the package 'chromium'")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
                       check=True, env=env)
        browser = find_browser()
        if browser is None:
            sys.exit("installed 'chromium' but found no chromium executable")
    return browser


def _args(browser: str, profile: Path, extra: list[str]) -> list[str]:
    return [browser, *FLAGS, f"--user-data-dir={profile}", *extra]


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of the top `height` px of `html` at `width` px (for looking at a report)."""
    with tempfile.TemporaryDirectory(prefix="kolab-chromium-") as profile:
        subprocess.run(_args(ensure_binaries(), Path(profile),
                             [f"--window-size={width},{height}", f"--screenshot={png}",
                              html.resolve().as_uri()]),
                       check=True, capture_output=True, timeout=120)
    return png


@dataclass
class Page:
    """One browser tab over a DevTools websocket: send commands, collect events."""

    ws: Any
    requests: list[str] = field(default_factory=list)
    _next: int = 0

    def _on_event(self, msg: dict[str, Any]) -> None:
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if not url.startswith(("file:", "data:")):
                self.requests.append(url)

    def send(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._on_event(msg)

    def wait_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self._on_event(msg)
            if msg.get("method") == method:
                return msg.get("params", {})

    def open(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Network.enable")
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)

    def media(self, media: str) -> None:
        """Emulate a CSS media type (`print`, `screen`)."""
        self.send("Emulation.setEmulatedMedia", media=media)

    def print_pdf(self) -> bytes:
        """The page printed as Chromium prints it (A4, the page's own @page rules)."""
        res = self.send("Page.printToPDF", timeout=120, preferCSSPageSize=True,
                        printBackground=True, paperWidth=8.27, paperHeight=11.69)
        return base64.b64decode(res["data"])


@contextmanager
def browser_page() -> Iterator[Page]:
    """A headless Chromium with one blank tab, closed (and its profile removed) on exit."""
    from websockets.sync.client import connect

    browser = ensure_binaries()
    profile = Path(tempfile.mkdtemp(prefix="kolab-chromium-"))
    proc = subprocess.Popen(_args(browser, profile, ["--remote-debugging-port=0", "about:blank"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        with connect(url, max_size=None, open_timeout=30) as ws:
            yield Page(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["ensure-binaries"]:
        print(f"Chromium: {ensure_binaries()}")
    elif sys.argv[1:2] == ["screenshot"] and len(sys.argv) >= 4:
        size = [int(v) for v in sys.argv[4:6]] or [1280, 2400]
        print(screenshot(Path(sys.argv[2]), Path(sys.argv[3]), *size))
    else:
        sys.exit("usage: python -m tests.support.chromium ensure-binaries | "
                 "screenshot REPORT.html OUT.png [WIDTH HEIGHT]")
