"""A real, throw-away PostgreSQL server for the tests.

The PostgreSQL 15 server binaries refuse to run as root, so when the tests run as root the server
is initialised and started as the `postgres` system user (`runuser`). `python -m tests.support.pg
ensure-binaries` (called by `make test`) installs Debian's `postgresql` package when no server
binaries are found, so a fresh machine needs nothing installed by hand.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "postgres"


def find_bindir() -> Path | None:
    """Folder holding `initdb`, `pg_ctl` and `postgres`, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    for c in candidates:
        if all((Path(c) / exe).exists() for exe in ("initdb", "pg_ctl", "postgres")):
            return Path(c)
    return None


def ensure_binaries() -> Path:
    bindir = find_bindir()
    if bindir is None:
        if os.geteuid() != 0:
            sys.exit("PostgreSQL server binaries not found and not root: "
                     "install package 'postgresql'")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env)
        bindir = find_bindir()
        if bindir is None:
            sys.exit("installed 'postgresql' but found no initdb/pg_ctl")
    if os.geteuid() == 0:
        try:
            subprocess.run(["id", SYSTEM_USER], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True)
    return bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    datadir: Path
    port: int
    user: str = SYSTEM_USER

    def _as_owner(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", SYSTEM_USER, "--", *args] if os.geteuid() == 0 else args

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create (or recreate) a database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.datadir),
                                       "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start() -> PostgresServer:
    """initdb into a temp folder, start on a free loopback port with trust auth, wait until
    ready."""
    bindir = ensure_binaries()
    root = Path(tempfile.mkdtemp(prefix="kolab-pg-"))
    datadir = root / "data"
    sockdir = root / "sock"
    sockdir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, SYSTEM_USER)
        shutil.chown(sockdir, SYSTEM_USER)
        os.chmod(root, 0o755)
    server = PostgresServer(bindir=bindir, datadir=datadir, port=_free_port(),
                            user=(SYSTEM_USER if os.geteuid() == 0
                                  else os.environ.get("USER", "postgres")))
    subprocess.run(server._as_owner([str(bindir / "initdb"), "-D", str(datadir), "-U", server.user,
                                     "--auth=trust", "--encoding=UTF8", "--no-sync", "-N"]),
                   check=True, capture_output=True)
    opts = f"-p {server.port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(server._as_owner([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts,
                                     "-l", str(root / "server.log"), "-w", "-t", "60", "start"]),
                   check=True, capture_output=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not start; see {root / 'server.log'}")


if __name__ == "__main__":
    if sys.argv[1:] == ["ensure-binaries"]:
        print(f"PostgreSQL binaries: {ensure_binaries()}")
    else:
        sys.exit("usage: python -m tests.support.pg ensure-binaries")
