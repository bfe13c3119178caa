"""A throw-away PostgreSQL cluster on a Unix socket: the test suite's and the benchmarks'.

Debian's ``initdb``/``pg_ctl`` (PostgreSQL 15 or 16) in a temporary directory, as the
``postgres`` user when run as root; durability off (``fsync``, ``synchronous_commit``,
``full_page_writes``): the data dies with the run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine

from support.net import free_port

PG_BIN = next((p for p in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
               if os.path.isdir(p)), "")


class PgCluster:
    """A throw-away PostgreSQL cluster on a Unix socket."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ct-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o755)

    def _run(self, *cmd):
        cmd = [os.path.join(PG_BIN, cmd[0]) if PG_BIN else cmd[0], *cmd[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def start(self):
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")
        opts = (f"-c listen_addresses='' -k {self.dir} -p {self.port} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        return self

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.dir}&port={self.port}"

    def create_database(self, dbname: str) -> str:
        """A new empty database; its URL."""
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{dbname}"')
        finally:
            engine.dispose()
        return self.url(dbname)
