"""``flask outbox send [--watch]`` and ``flask outbox status``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from intake.auth.account_services import send_reset_links
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.sender import DEFAULT_PASS_LIMIT, MailNotConfigured, SendReport, send_due, summarize

outbox_cli = AppGroup("outbox", help="Send and inspect queued e-mail.")


@outbox_cli.command("send")
@click.option("--watch", is_flag=True, help="Keep running, a pass every --interval seconds, until Ctrl-C or SIGTERM.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds between passes with --watch.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_PASS_LIMIT, show_default=True,
              help="At most this many messages per pass.")
@click.option("--max-passes", type=click.IntRange(min=1), hidden=True, help="With --watch: stop after N passes.")
def outbox_send(watch: bool, interval: float, limit: int, max_passes: int | None) -> None:
    """Deliver the messages that are due (SMTP, or the console without MAIL_SERVER), after queueing the
    links of the password resets asked for since the last pass (``send_reset_links``)."""
    if not watch:
        try:
            send_reset_links()
            report = send_due(limit)
        except MailNotConfigured as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error ({type(exc).__name__}); nothing was lost, run again") from None
        click.echo(f"Outbox: {report}.")
        return

    stop = threading.Event()
    installed, previous = _on_sigterm(stop.set)
    total, passes = SendReport(), 0
    click.echo(f"Watching the outbox every {interval:g} s (Ctrl-C or SIGTERM stops).")
    try:
        while not stop.is_set():
            try:
                send_reset_links()
                report = send_due(limit, should_stop=stop.is_set)
            except MailNotConfigured as exc:
                raise click.ClickException(str(exc)) from None
            except SQLAlchemyError as exc:
                # The database is down or busy: say so and try again next time; nothing is lost.
                db.session.remove()
                click.echo(f"Outbox pass failed: database error ({type(exc).__name__}); "
                           f"trying again in {interval:g} s.", err=True)
            else:
                total.add(report)
                if report.sent or report.retried or report.failed:
                    click.echo(f"Outbox: {report}.")
            passes += 1
            if max_passes is not None and passes >= max_passes:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    click.echo(f"Stopped after {passes} pass(es): {total}.")


def _on_sigterm(callback: Callable[[], None]) -> tuple[bool, Any]:
    """Call ``callback`` on SIGTERM instead of dying mid-message; return (installed, previous handler)."""
    if threading.current_thread() is not threading.main_thread():
        return False, None  # only the main thread may handle signals
    return True, signal.signal(signal.SIGTERM, lambda _signum, _frame: callback())


@outbox_cli.command("status")
def outbox_status() -> None:
    """Count messages by status and give the age of the oldest pending one."""
    summary = summarize()
    click.echo("Outbox: " + ", ".join(f"{status.value} {n}" for status, n in summary.counts.items()) + ".")
    if summary.oldest_pending_created_at is None:
        click.echo("No message is waiting.")
    else:
        age = utcnow() - summary.oldest_pending_created_at
        click.echo(f"Oldest pending message: queued {format_age(age)} ago.")


def format_age(age: timedelta) -> str:
    """A short, readable duration: "45s", "12m", "3h 4m", "2d 5h"."""
    seconds = max(int(age.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"
