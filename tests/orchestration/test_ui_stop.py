"""`make ui` stops every Dagster process it started on Ctrl-C and on SIGTERM, and starts without
Dagster's Beta/Preview notices.

Every process `make ui` starts inherits a marker variable; after the signal, no living process
may carry it. Before the launcher (kolab_pipeline/orchestration/ui.py), SIGTERM to `make` left
five (dagster dev, code-server, grpc, webserver, daemon) running for over a minute.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.registry import write_minimal_registry

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 240
STOPPED_WITHIN_S = 25   # launcher: up to 8 s for dagster dev's own shutdown + 3 × 1.5 s steps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _marked(mark: str) -> list[tuple[int, str]]:
    """Living (not zombie) processes whose environment carries the marker."""
    out = []
    needle = f"KOLAB_UI_TEST_MARK={mark}".encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if needle not in (d / "environ").read_bytes():
                continue
            state = (d / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            out.append((int(d.name), cmd[:100]))
    return out


@pytest.mark.parametrize("how", ["SIGTERM to make", "Ctrl-C (SIGINT to the process group)"])
def test_make_ui_leaves_no_dagster_process(kolab_home: Path, tmp_path: Path, how: str):
    write_minimal_registry(kolab_home)
    mark, port = uuid.uuid4().hex, _free_port()
    env = dict(os.environ, KOLAB_HOME=str(kolab_home), UI_PORT=str(port),
               KOLAB_UI_TEST_MARK=mark)
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        make = subprocess.Popen(["make", "-s", "ui"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert make.poll() is None, log.read_text()
                time.sleep(1)
        else:
            pytest.fail(f"the UI did not answer within {STARTUP_S} s:\n{log.read_text()}")
        started = _marked(mark)
        assert len(started) >= 4, started   # make, launcher, dagster dev, webserver, daemon, …
        time.sleep(2)
        if how.startswith("SIGTERM"):
            os.kill(make.pid, signal.SIGTERM)
        else:
            os.killpg(make.pid, signal.SIGINT)   # what the terminal does on Ctrl-C
        t0 = time.monotonic()
        while _marked(mark) and time.monotonic() - t0 < STOPPED_WITHIN_S:
            time.sleep(0.5)
        left = _marked(mark)
        assert not left, f"{len(left)} process(es) still running {STOPPED_WITHIN_S} s after " \
                         f"{how}: {left}"
        make.wait(timeout=10)
    finally:
        for pid, _ in _marked(mark):   # never leave processes behind, even when failing
            os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    assert "Serving dagster-webserver" in text
    for notice in ("BetaWarning", "PreviewWarning", "is superseded"):
        assert notice not in text, f"{notice} at startup:\n{text}"
