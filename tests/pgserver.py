"""A throwaway PostgreSQL server for tests and benchmarks: initdb + pg_ctl in a temporary directory,
listening on a Unix socket only (no TCP), run as an unprivileged user (``postgres`` when we are root).

    with pg_server() as server:
        url = server.create_database("t1")      # postgresql://rag@/t1?host=...&port=...
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def pg_bin() -> Path | None:
    """The directory of initdb/pg_ctl (Debian keeps them out of PATH), newest version first."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name), reverse=True)
    return Path(dirs[0]) if dirs else None


def _as_user() -> list[str]:
    """Root may not run the server: run its commands as the ``postgres`` user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    return [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c"]


def _free_port() -> int:
    with socket.socket() as s:  # only a number for the socket file's name: the server listens on no TCP port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PGServer:
    root: Path
    port: int
    bin: Path

    @property
    def socket_dir(self) -> str:
        return str(self.root)

    def url(self, database: str = "postgres", user: str = "rag") -> str:
        return f"postgresql://{user}@/{database}?host={self.root}&port={self.port}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_as_user(), str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), *args],
                              capture_output=True, text=True, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses= -c fsync=off -c synchronous_commit=off " \
                  "-c full_page_writes=off -c max_connections=200"
        result = self._ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        if result.returncode:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()} {log[-2000:]}")


@contextmanager
def pg_server() -> Iterator[PGServer]:
    """Start a fresh cluster in a new temporary directory (short, for the socket path); stop and remove it afterwards."""
    binary = pg_bin()
    if binary is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        init = subprocess.run([*_as_user(), str(binary / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "rag",
                               "-E", "UTF8", "--locale=C", "--no-sync"], capture_output=True, text=True, timeout=120)
        if init.returncode:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        server = PGServer(root=root, port=_free_port(), bin=binary)
        server.start()
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
