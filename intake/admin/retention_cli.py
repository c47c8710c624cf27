"""``flask retention …``: the retention purge for cron or a timer."""

from __future__ import annotations

import click
from flask.cli import AppGroup

retention_cli = AppGroup("retention", help="Apply the retention policies.")
