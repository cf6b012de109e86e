"""`make ui`: `dagster dev` on the warehouse of KOLAB_HOME, stopped cleanly.

`python -m kolab_pipeline.orchestration.ui [--host 127.0.0.1] [--port 3000]` prepares
`KOLAB_HOME/.dagster` (the instance `kolab run` records its runs in) and runs `dagster dev` in a
process group of its own; on SIGINT, SIGTERM or SIGHUP it asks it to shut down (SIGINT), then
sends SIGTERM and SIGKILL to whatever of the group is alive after `GRACE_S` seconds.
Why: docs/design/onboarding.md, "`make ui`".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

GRACE_S = 8.0     # dagster dev's own shutdown took 1-3 s on a loaded 2-core machine
STEP_S = 1.5      # then SIGINT, SIGTERM, SIGKILL to what is left of its group, this far apart
# `dagster dev` is superseded by `dg dev`, which does not read workspace.yaml the same way.
SUPERSEDED = "ignore:Function `dev_command` is superseded:FutureWarning"
ROOT = Path(__file__).resolve().parents[2]


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def stop(proc: subprocess.Popen, grace_s: float = GRACE_S, step_s: float = STEP_S) -> None:
    """Stop `dagster dev` and its process group: SIGINT to it (its graceful shutdown), then, for
    whatever of the group is left, SIGINT, SIGTERM and SIGKILL to the group `step_s` apart.
    (`dagster dev` and its code servers do not stop on SIGTERM alone: measured, five processes
    were still running a minute after `make ui` got SIGTERM.)"""
    pgid = proc.pid  # start_new_session: the child leads its own group

    def gone() -> bool:  # poll() reaps the leader: a zombie would still count as alive
        return proc.poll() is not None and not _alive(pgid)

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _wait_until(lambda: proc.poll() is not None, grace_s)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if _wait_until(gone, step_s):
            return
        _signal_group(pgid, sig)
    _wait_until(gone, step_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make ui", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)

    from kolab_pipeline.config import Settings
    from kolab_pipeline.orchestration.runner import ensure_instance_dir

    settings = Settings.load()
    env = dict(os.environ, KOLAB_HOME=str(settings.paths.home),
               DAGSTER_HOME=str(ensure_instance_dir(settings)))
    env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS"), SUPERSEDED) if w)
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", args.host,
           "-p", str(args.port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    while proc.poll() is None and not stopping:
        time.sleep(0.2)
    if stopping:
        print(f"make ui: {signal.Signals(stopping[0]).name} received, stopping Dagster …",
              file=sys.stderr, flush=True)
    stop(proc)
    return 0 if stopping else (proc.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
