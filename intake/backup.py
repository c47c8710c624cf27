"""``flask backup create`` / ``flask backup restore``: consistent copies of a SQLite database."""

from __future__ import annotations

from flask.cli import AppGroup

backup_cli = AppGroup("backup", help="Back up and restore the database.")
