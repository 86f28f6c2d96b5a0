"""Database URLs: relative SQLite paths, secret-free display, reachable engines."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from migrate.errors import InputError, UnreachableError


def resolve_url(url: str, base_dir: Path) -> sa.URL:
    """Parse a URL; a relative SQLite path is relative to the project folder.

    MySQL/MariaDB URLs without a driver get PyMySQL, PostgreSQL ones psycopg 3.

    Example:
        >>> str(resolve_url("sqlite:///data/erp.db", Path("/srv/m")))
        'sqlite:////srv/m/data/erp.db'
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise InputError(f"not a database URL: {safe_url(url)!r} (expected e.g. postgresql://user@host/db)") from None
    if parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    elif parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            parsed = parsed.set(database=str((base_dir / path).resolve()))
    return parsed


def safe_url(url: str | sa.URL) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True) if isinstance(url, str) else \
            url.render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable url>"


def make_engine(url: str, base_dir: Path, *, must_exist: bool = False, create_dirs: bool = False,
                bulk_load: bool = False) -> sa.Engine:
    """An engine for ``url``; a missing SQLite file is an error when ``must_exist``.

    ``bulk_load`` lets a MariaDB/MySQL client send ``LOAD DATA LOCAL INFILE`` (a target's bulk path).

    Connectivity is checked at once, so an unreachable server is one clear line, not a
    traceback halfway through a run.
    """
    parsed = resolve_url(url, base_dir)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if must_exist and not path.is_file():
            raise InputError(f"{path}: SQLite database file not found")
        if create_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"local_infile": True} if bulk_load and parsed.get_backend_name() in ("mysql", "mariadb") else {}
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        raise InputError(f"{safe_url(parsed)}: the database driver {exc.name!r} is not installed") from None
    except sa.exc.ArgumentError as exc:
        raise InputError(f"{safe_url(parsed)}: {exc}") from None
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise UnreachableError(f"cannot connect to {safe_url(parsed)}: {detail[0] if detail else type(exc).__name__}") \
            from None
    return engine
