"""Create the PostgreSQL database a URL names, if it does not exist yet (``make test-pg``).

    python scripts/ensure_pg_database.py postgresql+psycopg://postgres@127.0.0.1:5432/test

Connects to the server's ``postgres`` maintenance database with the same credentials and runs
``CREATE DATABASE`` when needed; says what it did in one line, or why it could not (exit 1).
"""

from __future__ import annotations

import sys

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


def ensure_database(url: str) -> str:
    """Create the database of ``url`` when missing; return a line saying which happened."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise SystemExit(f"no database name in {parsed.render_as_string(hide_password=True)}")
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                return f"PostgreSQL database {name!r} is there."
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return f"Created the PostgreSQL database {name!r}."
    except psycopg.OperationalError as exc:
        where = parsed.set(database="postgres").render_as_string(hide_password=True)
        raise SystemExit(f"PostgreSQL does not answer at {where}: {str(exc).strip().splitlines()[0]}\n"
                         "Start it, or set TEST_DATABASE_URL to a server you may create databases on.") from exc


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    print(ensure_database(argv[1]))


if __name__ == "__main__":
    main(sys.argv)
