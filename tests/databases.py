"""The databases of a test session: SQLite files by default, PostgreSQL when SORCHA_TEST_DATABASE_URL says so.

`SORCHA_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/<name>` makes the test process use
that server (pytest-django creates and drops `test_<name>` on it), and every node a test starts
(tests/nodes.py, tests/system/harness.py) gets a database of its own on the same server, cloned
from a template migrated once per session and dropped when the node is cleaned up or the session ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent

TEST_DATABASE_URL = os.environ.get("SORCHA_TEST_DATABASE_URL", "").strip()
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres://", "postgresql://", "pgsql://"))

_lock = threading.Lock()
_template: str | None = None  # SQLite: the migrated file's path; PostgreSQL: the template database's name
_created: set[str] = set()  # PostgreSQL databases created by this process, dropped at exit at the latest


def session_database_url(directory: str) -> str:
    """DATABASE_URL of the test process: the PostgreSQL one asked for, else a SQLite file in `directory`."""
    if TEST_DATABASE_URL and not ON_POSTGRES:
        raise RuntimeError(f"SORCHA_TEST_DATABASE_URL must be a postgres:// URL, got {TEST_DATABASE_URL!r}")
    return TEST_DATABASE_URL or f"sqlite:///{directory}/test.sqlite3"


def url_of(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database Django is connected to (e.g. the test database), for child processes."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    return _postgres_url(str(settings_dict["NAME"]))


def _postgres_url(name: str) -> str:
    return urlunparse(urlparse(TEST_DATABASE_URL)._replace(path=f"/{name}"))


def _admin_connection() -> Any:
    import psycopg

    return psycopg.connect(_postgres_url("postgres"), autocommit=True)


def _execute(statement: str) -> None:
    with _admin_connection() as connection:
        connection.execute(statement)


def _new_name(kind: str) -> str:
    base = urlparse(TEST_DATABASE_URL).path.lstrip("/") or "sorcha"
    return f"{base[:30]}_{kind}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _migrate(database_url: str) -> None:
    from tests.nodes import BIN

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update({"SORCHA_ENV_FILE": os.devnull, "DEBUG": "true", "DATABASE_URL": database_url})
    env.update({"REDIS_URL": "redis://127.0.0.1:1/0", "LOG_LEVEL": "WARNING"})
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )


def _template_name() -> str:
    """The migrated template (created on first use, under the lock)."""
    global _template
    if _template is None:
        if ON_POSTGRES:
            name = _new_name("template")
            _execute(f'CREATE DATABASE "{name}"')
            _created.add(name)
            _migrate(_postgres_url(name))
        else:
            folder = Path(tempfile.mkdtemp(prefix="sorcha-template-db-"))
            name = str(folder / "template.sqlite3")
            _migrate(f"sqlite:///{name}")
        _template = name
    return _template


def migrated_sqlite_file(target: Path) -> Path:
    """A migrated SQLite file at `target` (copied from the session's template)."""
    with _lock:
        template = _template_name() if not ON_POSTGRES else None
    if template is None:
        raise RuntimeError("migrated_sqlite_file is for SQLite sessions only")
    shutil.copyfile(template, target)
    return target


class NodeDatabase:
    """One node's own migrated database."""

    def __init__(self, directory: Path) -> None:
        if ON_POSTGRES:
            self.name = _new_name("node")
            with _lock:
                template = _template_name()
                # Cloning a template is a file copy on the server: much faster than migrating again.
                _execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template}"')
                _created.add(self.name)
            self.url = _postgres_url(self.name)
        else:
            self.path = migrated_sqlite_file(directory / "node.sqlite3")
            self.name = str(self.path)
            self.url = f"sqlite:///{self.path}"

    def query(self, sql: str) -> set[Any]:
        """The first column of every row, read by a connection of the test's own (not the node's)."""
        if ON_POSTGRES:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as connection:
                return {row[0] for row in connection.execute(sql)}
        import sqlite3

        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=20)
        try:
            return {row[0] for row in connection.execute(sql)}
        finally:
            connection.close()

    def drop(self) -> None:
        if ON_POSTGRES:
            drop_postgres(self.name)


def drop_postgres(name: str) -> None:
    with _lock:
        if name not in _created:
            return
        _created.discard(name)
    # FORCE: a node killed with SIGKILL may leave a backend behind for a moment.
    _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_all() -> None:
    """Drop every database this process created (node databases, then the template)."""
    global _template
    for name in sorted(_created, key=lambda name: "_template_" in name):
        try:
            drop_postgres(name)
        except Exception as exc:  # at exit: report it, never hide the session's own result
            print(f"could not drop test database {name}: {exc!r}")
    _template = None


def database_errors() -> tuple[type[BaseException], ...]:
    """What reading a node's database may raise while the node is busy or restarting."""
    import sqlite3

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    if ON_POSTGRES:
        import psycopg

        errors += (psycopg.Error,)
    return errors


if ON_POSTGRES:
    atexit.register(drop_all)
