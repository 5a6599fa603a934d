"""A real PostgreSQL (Debian's packages) on a free loopback port, for a test session.

``initdb`` into a fresh directory and ``postgres`` listening on 127.0.0.1 only (no Unix socket),
trust authentication for its one user. Durability is switched off (``fsync``, full page writes,
synchronous commit): a test server that loses its data on a power cut loses nothing of value, and
every ``CREATE DATABASE`` and commit is faster. PostgreSQL refuses to run as root, so as root it
runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .procs import ManagedProcess, free_port, wait_until

__all__ = ["Postgres", "find_postgres", "start_postgres"]

USER = "ladewache"


def find_postgres() -> Path | None:
    """The newest installed server's bin directory (``/usr/lib/postgresql/<n>/bin``)."""
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")]
    versions.sort(key=lambda bin_dir: int(v) if (v := bin_dir.parent.name).isdigit() else 0)
    return versions[-1] if versions else None


@dataclass
class Postgres:
    port: int
    process: ManagedProcess
    workdir: Path
    argv: list[str] = field(default_factory=list)
    _created: int = field(default=0)

    def wait_ready(self) -> None:
        def ready() -> bool:
            try:
                with self.admin():
                    return True
            except psycopg.OperationalError:
                if self.process.proc.poll() is not None:
                    raise RuntimeError(f"postgres exited:\n{self.process.output()}") from None
                return False

        wait_until(ready, 60, f"postgres on port {self.port}")

    def restart(self) -> None:
        """Stop the server (a fast shutdown: every connection is cut) and start it again on the
        same port with the same data: a database restart as clients see it."""
        self.process.signal(signal.SIGINT)  # fast shutdown (SIGTERM would wait for the clients)
        self.process.proc.wait(30)
        self.process.stop()
        self.process = ManagedProcess("postgres", self.argv)
        self.wait_ready()

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this server."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection to the maintenance database, in autocommit (CREATE DATABASE needs it)."""
        return psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                               autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (from ``template`` when given: a migrated copy costs a file copy, not a
        migration); its URL."""
        with self.admin() as db:
            clause = f" TEMPLATE {template}" if template else ""
            db.execute(f'CREATE DATABASE "{name}"{clause}')  # names are ours, never a test's input
        return self.url(name)

    def new_database(self, template: str | None = None) -> str:
        """A database of a name not used before on this server; its URL."""
        self._created += 1
        return self.create_database(f"t{os.getpid()}_{self._created}", template)

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _as_postgres_user() -> list[str]:
    """The prefix that runs a command as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no postgres user "
                           "(apt-get install postgresql)") from None
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def start_postgres() -> Postgres:
    bin_dir = find_postgres()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed; `make test` installs it "
                           "(apt-get install postgresql)")
    # Not under pytest's tmp dirs: those are private to root, and the server may run as postgres.
    workdir = Path(tempfile.mkdtemp(prefix="ladewache-pg-"))
    data = workdir / "data"
    as_user = _as_postgres_user()
    if as_user:
        shutil.chown(workdir, "postgres", "postgres")
    init = ManagedProcess("initdb", [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", USER,
                                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
    if init.proc.wait(120) != 0:
        init.stop()
        raise RuntimeError(f"initdb failed:\n{init.output()}")
    init.stop()
    port = free_port()
    argv = [
        *as_user, str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
        "-k", "", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
        "-c", "max_connections=400", "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning",
    ]
    server = Postgres(port, ManagedProcess("postgres", argv), workdir, argv=argv)
    server.wait_ready()
    return server
