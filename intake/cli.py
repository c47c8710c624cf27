"""Command-line interface: ``flask --app intake <group> <command>``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

import config as config_module
from intake.admin.retention_cli import retention_cli
from intake.archive.cli import archive_cli
from intake.audit.anchor import AnchorError, last_anchor, write_anchor
from intake.audit.chain import verify_chain
from intake.audit.services import record
from intake.auth.mfa import reset_mfa
from intake.auth.services import unlock
from intake.backup import backup_cli
from intake.catalogues import catalogue_problems
from intake.demo import demo_cli
from intake.extensions import db
from intake.notify.cli import outbox_cli
from intake.ops.alerts import alert_command
from intake.ops.cli import jobs_cli, wait_for_database_command
from intake.ops.jobs import periodic_job
from intake.ops.progress import bars
from intake.records import letter_pdf
from intake.records.cli import records_cli
from intake.review.cli import review_cli
from intake.security.crypto import DecryptionError
from intake.security.keys import rotate_batches
from intake.security.passwords import password_problems
from intake.users.invitations import invite_command, role_option
from intake.users.models import Role
from intake.users.services import (
    AccountError,
    check_role_set,
    count_active_admins,
    create_user,
    disable_user,
    find_by_email,
    require_display_name,
    role_values,
)

users_cli = AppGroup("users", help="Create and disable accounts.")
audit_cli = AppGroup("audit", help="Check the audit trail.")
keys_cli = AppGroup("keys", help="Manage the field-encryption keys.")
users_cli.add_command(invite_command)

ADMIN_HINT = "{flask} --app intake users create --email you@example.org --name 'Your Name' --role admin"


def _flask_command() -> str:
    """This environment's flask, as the reader can type it from where they are (``.venv/bin/flask``,
    or ``.venv-3.12/bin/flask`` when ``make run VENV=.venv-3.12`` made it)."""
    flask = Path(sys.executable).parent / "flask"
    try:
        return os.path.relpath(flask)
    except ValueError:  # another drive (Windows)
        return str(flask)


def _read_password(email: str) -> str:
    """A hidden prompt with confirmation on a terminal; one line from stdin otherwise."""
    if sys.stdin.isatty():
        while True:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            problems = password_problems(password, email)
            if not problems:
                return password
            click.echo("Not accepted: " + " ".join(problems), err=True)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@users_cli.command("create")
@click.option("--email", required=True, help="The account's e-mail address (its sign-in name).")
@click.option("--role", "roles", required=True, multiple=True, callback=role_option,
              help="The account's role (" + ", ".join(r.value for r in Role) + "). A staff member may hold "
                   "several: repeat --role, or separate them by commas (--role operator,supervisor).")
@click.option("--name", "display_name", default=None,
              help="The staff member's name, as colleagues and the audit trail know them (required for staff).")
def users_create(email: str, roles: list[Role], display_name: str | None) -> None:
    """Create an account; the password comes from a hidden prompt or from stdin."""
    # The rules that need no password are checked before asking for one.
    try:
        roles = check_role_set(roles)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    if any(role.is_staff for role in roles):
        if not (display_name or "").strip():
            raise click.ClickException("Staff accounts need a name: add --name 'First Last'.")
        try:
            display_name = require_display_name(display_name)
        except AccountError as exc:
            raise click.ClickException(f"--name: {exc}") from exc
    password = _read_password(email)
    try:
        user = create_user(email, roles, password, display_name=display_name)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created account #{user.id} ({', '.join(role_values(user.roles))}). Sign in at /login.")


@users_cli.command("disable")
@click.option("--email", required=True, help="The e-mail address of the account to disable.")
def users_disable(email: str) -> None:
    """Disable an account and end all its sessions at once."""
    user = _find_or_fail(email)
    try:
        # No actor here, so no "own account" rule; the last-active-admin rule applies all the same.
        disable_user(user)
    except AccountError as exc:
        db.session.rollback()  # let go of the rows the check locked
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Disabled account #{user.id}; its sessions have ended.")


@users_cli.command("unlock")
@click.option("--email", required=True, help="The e-mail address of the locked account.")
def users_unlock(email: str) -> None:
    """Lift a sign-in lock caused by too many failed attempts."""
    user = _find_or_fail(email)
    unlock(user, actor=None)
    db.session.commit()
    click.echo(f"Unlocked account #{user.id}.")


@users_cli.command("reset-mfa")
@click.option("--email", required=True, help="The e-mail address of the staff account.")
def users_reset_mfa(email: str) -> None:
    """Forget a staff member's authenticator and recovery codes; they enrol again at next sign-in."""
    user = _find_or_fail(email)
    reset_mfa(user, actor=None)
    db.session.commit()
    click.echo(f"Second factor reset for account #{user.id}; its sessions have ended.")


def _find_or_fail(email: str):
    user = find_by_email(email)
    if user is None:
        raise click.ClickException("no account with that e-mail address")
    return user


@users_cli.command("status")
def users_status() -> None:
    """Say whether an administrator exists, and how to create the first one (or load the demo) if not;
    name the demo accounts when there are some."""
    admins = count_active_admins()
    if admins:
        click.echo(f"{admins} active admin account(s).")
    else:
        click.echo("No admin account exists yet. Create the first one (from this folder, in another terminal) with:")
        click.echo(f"    {ADMIN_HINT.format(flask=_flask_command())}")
        click.echo("It asks for the password at a hidden prompt. Then sign in at /login.")
        click.echo("Or try the app with invented data first: make demo (it creates a demo account for each "
                   "staff role and prints how to sign in as each).")
    demo = [email for email in (f"demo-{role.value}@example.org" for role in Role) if find_by_email(email)]
    if demo:
        click.echo("Demo accounts: " + ", ".join(demo) + ". Their passwords were printed by make demo; a new one: "
                   "'Forgot your password?' at /login (in development the e-mail with the link is printed here).")
    db.session.rollback()


@audit_cli.command("verify")
@click.option("--anchor", "write_anchor_too", is_flag=True,
              help="When the trail is intact, also write its head as a new signed anchor (AUDIT_ANCHOR_PATH; "
                   "e-mailed to PRIVACY_OFFICER_EMAIL when set). Run it daily.")
@click.option("--after-restore", is_flag=True,
              help="After restoring a backup (older than the last anchor): check the trail on its own and, when "
                   "intact, make its head the new anchor. Audited.")
@periodic_job("audit-verify")
def audit_verify(write_anchor_too: bool, after_restore: bool) -> None:
    """Walk the keyed hash chain and compare its head with the last anchor; exit 1 and name the
    first broken link if any."""
    if after_restore:
        _restart_anchor()
        return
    report = verify_chain()
    if report.checkpoint_seq is not None:
        click.echo(f"Checked from the retention checkpoint: events 1 to {report.checkpoint_seq} were removed "
                   "by the retention purge; the chain continues from the hash of the last one.")
    if report.anchor is not None:
        click.echo(f"Compared with the anchor written {report.anchor.at:%Y-%m-%d %H:%M} UTC ({report.anchor.reason}): "
                   f"event {report.anchor.seq}.")
    else:
        click.echo(f"No anchor to compare with yet ({current_app.config['AUDIT_ANCHOR_PATH']}); "
                   "`flask audit verify --anchor` writes one.")
    if not report.ok:
        where = f" at event {report.broken_at}" if report.broken_at else ""
        click.echo(f"Audit trail BROKEN{where}: {report.reason} "
                   f"({report.checked} events verified before it).", err=True)
        sys.exit(1)
    click.echo(f"Audit trail intact: {report.checked} events, head {report.head_hash}.")
    if write_anchor_too:
        anchor = write_anchor("verify")
        db.session.commit()  # the e-mail to the privacy officer, when one is set
        click.echo(f"Anchored event {anchor.seq} in {current_app.config['AUDIT_ANCHOR_PATH']}.")


def _restart_anchor() -> None:
    """A restored backup ends before the last anchor: verify it alone, then anchor it (audited)."""
    try:
        previous = last_anchor()
    except AnchorError:
        previous = None
    report = verify_chain(anchor=False)
    if not report.ok:
        click.echo(f"Audit trail BROKEN at event {report.broken_at}: {report.reason}; no anchor written.", err=True)
        sys.exit(1)
    record("audit.anchor_restarted", details={
        "head_seq": report.head_seq,
        "previous_anchor_seq": previous.seq if previous else None,
        "previous_anchor_at": previous.at.isoformat() if previous else None})
    db.session.commit()
    anchor = write_anchor("restore")
    db.session.commit()
    click.echo(f"Audit trail intact: {report.checked} events. Anchored event {anchor.seq}; `flask audit verify` "
               "compares with it from now on.")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every value that is not under the newest key (the first in DATA_KEYS).

    Each batch is committed as it is done: an interrupted rotation keeps its work, and running the
    command again finishes it."""
    counts: dict[str, int] = {}
    active = current_app.extensions["intake_keyring"].active_kid
    try:
        with bars("rows") as shown:
            steps: dict[str, Callable[[int], None]] = {}
            for batch in rotate_batches():
                db.session.commit()
                if batch.table not in steps:
                    steps[batch.table] = shown.step(f"Re-encrypting {batch.table}")
                steps[batch.table](batch.rows)
                for where, n in batch.changed.items():
                    counts[where] = counts.get(where, 0) + n
    except DecryptionError as exc:
        db.session.rollback()
        done = sum(counts.values())
        raise click.ClickException(
            f"{exc}. DATA_KEYS must hold every key that values are still encrypted under, the new one first "
            f"(now: {', '.join(current_app.extensions['intake_keyring'].key_ids)}); see docs/deploy.md, "
            f"'Rotating keys'. {done} value(s) re-encrypted before this are kept: fix DATA_KEYS and run "
            "keys rotate again to finish.") from None
    total = sum(counts.values())
    for where, n in sorted(counts.items()):
        click.echo(f"{where}: {n} value(s) re-encrypted")
    click.echo(f"Done: {total} value(s) now under key {active}.")


@keys_cli.command("generate")
def keys_generate() -> None:
    """Print a new random key, for DATA_KEYS ("kid:key") or BLIND_INDEX_KEY."""
    click.echo(config_module.new_data_key())


@click.command("security-check")
@with_appcontext
def security_check() -> None:
    """List every unsafe setting (and a translation catalogue not compiled, a letter setting missing, PDF
    letters that cannot be made); exit 1 if there is any."""
    problems = config_module.unsafe_settings(current_app.config)
    # The app refuses to start without them, so this shows only one that went missing or stale since.
    problems += catalogue_problems(current_app.config, current_app.root_path)
    # Letters: the facility's details they print, and whether PDF files can be made here.
    problems += config_module.letter_setting_warnings(current_app.config)
    pdf_problem = letter_pdf.unavailable_reason()
    if pdf_problem:
        problems.append(f"PDF letters cannot be made ({pdf_problem}): install Debian's libpango-1.0-0 and "
                        "libpangoft2-1.0-0 (docs/deploy.md); HTML letters still work.")
    if not problems:
        click.echo("No unsafe setting found.")
        return
    click.echo(f"{len(problems)} unsafe setting(s):")
    for problem in problems:
        click.echo(f"- {problem}")
    sys.exit(1)


def register_cli(app: Flask) -> None:
    for command in (users_cli, audit_cli, keys_cli, security_check, outbox_cli, demo_cli, records_cli, archive_cli,
                    retention_cli, review_cli, backup_cli, alert_command, jobs_cli,
                    wait_for_database_command):
        app.cli.add_command(command)
