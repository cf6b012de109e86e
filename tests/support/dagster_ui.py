"""The Dagster UI as the tests (and the README screenshot) use it: `dagster-webserver -w
workspace.yaml` on a free port of 127.0.0.1 over a KOLAB_HOME and its Dagster instance, and
GraphQL queries against it.

`python -m tests.support.dagster_ui screenshot HOME OUT.png` starts the UI on HOME (a home made by
`make demo`, e.g. `./data`), opens the global asset graph in headless Chromium and saves a PNG
(docs/img/asset_graph.png was made this way).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.runner import ensure_instance_dir

REPO = Path(__file__).resolve().parents[2]
# No daemon in the tests to dequeue runs: launched runs start directly (the pool limit still
# applies per step).
DIRECT_COORDINATOR = ("run_coordinator:\n  module: dagster.core.run_coordinator\n"
                      "  class: DefaultRunCoordinator\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gql(base: str, query: str, variables: dict | None = None) -> dict:
    """The `data` of a GraphQL answer of the UI at `base` (asserting there are no errors)."""
    r = requests.post(f"{base}/graphql", json={"query": query, "variables": variables or {}},
                      timeout=120)
    r.raise_for_status()
    body = r.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def direct_run_coordinator(home: Path) -> Path:
    """The home's Dagster instance folder, set to launch runs without a daemon."""
    dagster_home = ensure_instance_dir(Settings.load(home))
    config = dagster_home / "dagster.yaml"
    if "DefaultRunCoordinator" not in config.read_text(encoding="utf-8"):
        with config.open("a") as fh:
            fh.write(DIRECT_COORDINATOR)
    return dagster_home


@contextmanager
def webserver(home: Path, log: Path, timeout: float = 180) -> Iterator[str]:
    """`dagster-webserver` on `home` (KOLAB_HOME, its instance in `home/.dagster`) until the block
    ends; yields the base URL once `/server_info` answers."""
    dagster_home = ensure_instance_dir(Settings.load(home))
    port = free_port()
    env = {**os.environ, "KOLAB_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env.pop("KOLAB_AUTOMATION", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    if requests.get(f"{base}/server_info", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.time() < deadline, f"webserver did not answer in {timeout:.0f} s"
                time.sleep(0.5)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# The asset graph is drawn once the nodes of the groups are on the page.
GRAPH_READY_JS = "document.querySelectorAll('foreignObject').length"
# The first visit shows a "Join the Dagster community" dialog: skip it.
SKIP_DIALOG_JS = """
(() => { const b = [...document.querySelectorAll('button')]
           .find(b => b.innerText.trim() === 'Skip'); if (b) b.click(); return !!b; })()
"""
# Hide the navigation and the asset tree beside the graph (the UI remembers both).
HIDE_PANELS_JS = """
(() => {
  const nav = [...document.querySelectorAll('button')]
    .find(b => b.innerText.trim() === 'Hide navigation');
  if (nav) nav.click();
  const tree = [...document.querySelectorAll('[aria-label=panel_show_right]')]
    .map(i => i.closest('button')).find(b => b && !b.innerText.trim());
  if (tree) tree.click();
  return [!!nav, !!tree];
})()
"""


def _wait_for_graph(page: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (page.evaluate(GRAPH_READY_JS) or 0) < 3:
        assert time.monotonic() < deadline, f"the asset graph did not render in {timeout:.0f} s"
        time.sleep(1)


def screenshot_asset_graph(base: str, png: Path, width: int = 1600, height: int = 800,
                           settle: float = 4.0) -> Path:
    """Open the UI's global asset lineage (`/asset-groups`: one node per group, i.e. per layer,
    with its number of assets) in headless Chromium and save a PNG of the page."""
    from tests.support import chromium

    with chromium.browser_page() as page:
        page.viewport(width, height)
        page.open(f"{base}/asset-groups")
        _wait_for_graph(page)
        time.sleep(2)
        page.evaluate(SKIP_DIALOG_JS)
        page.evaluate(HIDE_PANELS_JS)
        page.open(f"{base}/asset-groups")  # laid out again for the wider canvas
        _wait_for_graph(page)
        time.sleep(settle)
        page.evaluate(SKIP_DIALOG_JS)
        time.sleep(1)
        shot: dict[str, Any] = page.send("Page.captureScreenshot", format="png")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(shot["data"]))
    return png


if __name__ == "__main__":
    if sys.argv[1:2] == ["screenshot"] and len(sys.argv) == 4:
        import tempfile

        home, out = Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve()
        with tempfile.TemporaryDirectory() as tmp, \
                webserver(home, Path(tmp) / "webserver.log") as url:
            print(screenshot_asset_graph(url, out))
    else:
        sys.exit("usage: python -m tests.support.dagster_ui screenshot KOLAB_HOME OUT.png")
