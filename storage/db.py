"""Database engine and session factories; schema creation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, make_url, select, text
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage.models import GENESIS, AuditHead, Base


class NoDatabase(Exception):
    """There is no irbot database where the URL points; says where it looked."""


def shown_url(url: str) -> str:
    """Return the URL as it may be printed (no password)."""
    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "an unreadable DATABASE_URL"


def open_existing(url: str) -> Engine:
    """Open irbot's database for reading, never creating one: a missing SQLite file, a
    database without irbot's tables or one that does not answer raises NoDatabase."""
    try:
        parsed = make_url(normalize_url(url))
    except ArgumentError:
        raise NoDatabase(f"DATABASE_URL {url[:80]!r} is not a database URL") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not Path(str(parsed.database)).exists():
        raise NoDatabase(f"there is no database at {parsed.database}")
    engine = make_engine(url)
    try:
        ours = inspect(engine).has_table("audit_events")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise NoDatabase(f"{shown_url(url)} does not answer "
                         f"({type(exc).__name__})") from None
    if not ours:
        engine.dispose()
        raise NoDatabase(f"{shown_url(url)} holds no irbot data")
    return engine


def make_engine(url: str) -> Engine:
    """Build an engine for `url`, with SQLite set up for several threads and processes."""
    url = normalize_url(url)
    kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (the driver irbot ships with)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet, and the audit chain's head row."""
    Base.metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            if conn.execute(select(AuditHead.id).where(AuditHead.id == 1)).first() is None:
                conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
    except IntegrityError:
        pass  # another process created it at the same moment


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> bool:
    """Return True when the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
