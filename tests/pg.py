"""A throw-away PostgreSQL server for tests and bench scripts: initdb + pg_ctl on a temp dir and a
free loopback port (about 2 s), stopped and removed afterwards.

    with throwaway_postgres() as server:
        url = server.new_database()      # postgresql://postgres@127.0.0.1:PORT/db1 (empty)

Runs as the `postgres` user when started as root (initdb refuses root). `binaries()` is None when
no PostgreSQL server is installed (Debian: `apt-get install postgresql`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def free_port(env: str = "RECSYS_TEST_PORTS") -> int:
    """A free loopback port: in the range $env ("lo-hi") when set, else one the OS picks
    (RECSYS_TEST_PORTS for HTTP servers, RECSYS_TEST_PG_PORTS for PostgreSQL)."""
    span = os.environ.get(env)
    ports = range(*(int(x) + i for i, x in enumerate(span.split("-")))) if span else [0]
    for p in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in {env}={span}")


class Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self._n = itertools.count(1)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = f"db{next(self._n)}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Server]:
    bindir = binaries()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb) found; install the Debian package postgresql")
    root = os.geteuid() == 0
    d = tempfile.mkdtemp(prefix="recsys-pg-")
    as_pg = ["runuser", "-u", "postgres", "--"] if root else []
    if root:
        shutil.chown(d, "postgres", "postgres")
    port = free_port("RECSYS_TEST_PG_PORTS")
    try:
        subprocess.run([*as_pg, str(bindir / "initdb"), "-D", d, "-A", "trust", "-U", "postgres"], check=True,
                       capture_output=True, timeout=120)
        opts = f"-p {port} -k {d} -c listen_addresses=127.0.0.1"
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", d, "-o", opts, "-l", f"{d}/server.log", "-w", "start"],
                       check=True, capture_output=True, timeout=120)
        try:
            yield Server(port)
        finally:
            subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", d, "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)
