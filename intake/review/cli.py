"""``flask review …``: the weekly quality-review sample for cron or a timer."""

from __future__ import annotations

import click
from flask.cli import AppGroup

review_cli = AppGroup("review", help="Quality review of helpline calls.")
