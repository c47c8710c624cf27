"""keyed audit chain: HMAC links and signed checkpoints, age- and role-guarded deletes; reset requests

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:00:00.000000

Until now each audit link was an unkeyed SHA-256, which anybody who can INSERT can compute. From
here on a link is HMAC-SHA256 under the first key of ``AUDIT_KEYS`` (the row names it in
``key_id``), and each checkpoint carries an HMAC signature (docs/security.md, "Audit trail").

An existing trail is re-linked here, under the key, after it is checked by the old rules: every
link from the latest checkpoint (or the first event) on, and the checkpoint's announcement. A trail
that fails that check is not re-keyed (that would launder it): the upgrade stops and says where it
broke. Events the latest checkpoint already covers (an interrupted purge leaves some) keep their
old hash and get the key id; nothing walks them. Checkpoints keep their seq and hash, are signed
and marked ``legacy`` (they are checked by the rules they were written under).

The database now refuses to delete an audit event younger than six years even behind a
checkpoint, and on PostgreSQL refuses every checkpoint INSERT and event DELETE that does not come
from the purge job's role (``AUDIT_PURGE_ROLE``, read now) or the tables' owner. The trigger
functions name their tables through the trigger's own schema and run with a fixed search path, so
a temporary table of the same name cannot stand in for the checkpoints.

Also: ``password_reset_requests``, the queue behind ``/reset`` (the same work for every address).

The computations below are frozen copies of intake/audit/keys.py and intake/audit/chain.py (a
revision never imports app code); they must keep producing the same bytes.
"""
import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from flask import current_app

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64
MIN_KEEP_DAYS = 2192
BATCH = 2000

events = sa.table(
    "audit_events",
    sa.column("seq", sa.Integer), sa.column("occurred_at", sa.DateTime), sa.column("actor_id", sa.Integer),
    sa.column("actor_role", sa.String), sa.column("action", sa.String), sa.column("object_type", sa.String),
    sa.column("object_id", sa.String), sa.column("ip_address", sa.String), sa.column("details", sa.Text),
    sa.column("prev_hash", sa.String), sa.column("hash", sa.String), sa.column("key_id", sa.String),
)
checkpoints = sa.table(
    "audit_checkpoints",
    sa.column("id", sa.Integer), sa.column("through_seq", sa.Integer), sa.column("through_hash", sa.String),
    sa.column("created_at", sa.DateTime), sa.column("key_id", sa.String), sa.column("signature", sa.String),
    sa.column("legacy", sa.Boolean),
)


class BrokenTrail(RuntimeError):
    pass


# --- the keys and the links (as intake/audit/keys.py and chain.py compute them) ----------------

def _first_audit_key():
    spec = (current_app.config.get("AUDIT_KEYS") or "").split(",")[0].strip()
    kid, _, b64 = spec.partition(":")
    if not kid or not b64:
        raise RuntimeError("Migration 0012 needs AUDIT_KEYS (kid:base64key) to re-link the audit trail under it; "
                           "see docs/deploy.md, section 4.")
    raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    derive = {use: hmac.new(raw, label, hashlib.sha256).digest()
              for use, label in (("link", b"intake.audit.link.v1"), ("checkpoint", b"intake.audit.checkpoint.v1"))}
    return kid, derive


def _dumps(body):
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _body(row, prev_hash):
    occurred = row.occurred_at.replace(tzinfo=UTC) if row.occurred_at.tzinfo is None else row.occurred_at
    return {"seq": row.seq, "occurred_at": occurred.isoformat(timespec="microseconds"), "actor_id": row.actor_id,
            "actor_role": row.actor_role, "action": row.action, "object_type": row.object_type,
            "object_id": row.object_id, "ip_address": row.ip_address, "details": row.details, "prev_hash": prev_hash}


def _legacy_hash(row, prev_hash):
    return hashlib.sha256(_dumps(_body(row, prev_hash))).hexdigest()


def _keyed_hash(row, prev_hash, kid, link_key):
    return hmac.new(link_key, _dumps({**_body(row, prev_hash), "key_id": kid}), hashlib.sha256).hexdigest()


def _checkpoint_signature(cp, kid, checkpoint_key):
    created = cp.created_at.replace(tzinfo=UTC) if cp.created_at.tzinfo is None else cp.created_at
    body = {"through_seq": cp.through_seq, "through_hash": cp.through_hash,
            "created_at": created.isoformat(timespec="microseconds"), "legacy": True}
    return hmac.new(checkpoint_key, _dumps(body), hashlib.sha256).hexdigest()


def _rows_after(conn, seq):
    """Every event after ``seq``, in order, read in keyset batches."""
    while True:
        batch = conn.execute(sa.select(events).where(events.c.seq > seq).order_by(events.c.seq).limit(BATCH)).all()
        if not batch:
            return
        yield from batch
        seq = batch[-1].seq


def _check_legacy_checkpoint(conn, cp):
    """The rules the checkpoint was written under: announced after the events it covers, with the same
    seq and hash and a cutoff at least six years before the announcement."""
    announced = conn.execute(
        sa.select(events).where(events.c.object_type == "audit_checkpoint", events.c.object_id == str(cp.id),
                                events.c.action == "audit.checkpoint_written")
        .order_by(events.c.seq).limit(1)).first()
    if announced is None or announced.seq <= cp.through_seq:
        raise BrokenTrail(f"checkpoint {cp.id} is not announced in the trail")
    details = json.loads(announced.details or "{}")
    if details.get("through_seq") != cp.through_seq or details.get("through_hash") != cp.through_hash:
        raise BrokenTrail(f"checkpoint {cp.id} does not match its announcement")
    cutoff = datetime.fromisoformat(details.get("cutoff") or "1970-01-01")
    when = announced.occurred_at.replace(tzinfo=UTC)
    if cutoff.tzinfo is None or when - cutoff < timedelta(days=MIN_KEEP_DAYS):
        raise BrokenTrail(f"checkpoint {cp.id} removed events younger than six years")


def _relink(conn, keyed):
    """Check the whole trail by the rules it was written under, then re-link it under the other
    scheme (``keyed``: SHA-256 → HMAC; otherwise back). Two passes over the rows, so nothing is
    written unless all of it checks, and memory stays flat however long the trail is."""
    kid, keys = _first_audit_key() if keyed else (None, None)
    all_checkpoints = conn.execute(sa.select(checkpoints).order_by(checkpoints.c.through_seq.desc())).all()
    latest = all_checkpoints[0] if all_checkpoints else None
    since, start_hash = (latest.through_seq, latest.through_hash) if latest is not None else (0, GENESIS_HASH)
    if keyed:
        if latest is not None:
            _check_legacy_checkpoint(conn, latest)
        old_of = _legacy_hash
        new_of = lambda row, prev: _keyed_hash(row, prev, kid, keys["link"])  # noqa: E731
    else:
        old_of = lambda row, prev: _keyed_hash(row, prev, row.key_id, _key_for(row.key_id))  # noqa: E731
        new_of = _legacy_hash
    expected, prev = since + 1, start_hash
    for row in _rows_after(conn, since):
        if row.seq != expected:
            raise BrokenTrail(f"event {expected} is missing")
        if row.prev_hash != prev:
            raise BrokenTrail(f"event {row.seq}: link to the previous event does not match")
        if old_of(row, prev) != row.hash:
            raise BrokenTrail(f"event {row.seq}: content does not match its hash")
        prev, expected = row.hash, expected + 1
    statement = sa.text("UPDATE audit_events SET prev_hash = :p, hash = :h" + (", key_id = :k" if keyed else "")
                        + " WHERE seq = :s")
    prev, updates = start_hash, []
    for row in _rows_after(conn, since):
        new_hash = new_of(row, prev)
        updates.append({"s": row.seq, "p": prev, "h": new_hash, "k": kid})
        prev = new_hash
        if len(updates) >= BATCH:
            conn.execute(statement, updates)
            updates = []
    if updates:
        conn.execute(statement, updates)
    if keyed:
        conn.execute(sa.text("UPDATE audit_events SET key_id = :k WHERE key_id IS NULL"), {"k": kid})
        for cp in all_checkpoints:
            conn.execute(sa.text("UPDATE audit_checkpoints SET key_id = :k, signature = :s, legacy = :l WHERE id = :i"),
                         {"k": kid, "s": _checkpoint_signature(cp, kid, keys["checkpoint"]), "l": True, "i": cp.id})


def _key_for(kid):
    for part in (current_app.config.get("AUDIT_KEYS") or "").split(","):
        name, _, b64 = part.strip().partition(":")
        if name == kid:
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            return hmac.new(raw, b"intake.audit.link.v1", hashlib.sha256).digest()
    raise RuntimeError(f"Downgrading the audit trail needs its key {kid!r} in AUDIT_KEYS")


# --- the guards ---------------------------------------------------------------------------------

def _purge_role():
    name = current_app.config.get("AUDIT_PURGE_ROLE") or "intake_purge"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise RuntimeError("AUDIT_PURGE_ROLE must be a lower-case PostgreSQL role name (letters, digits, _)")
    return name


def _allowed_sql(role):
    """PL/pgSQL: may ``current_user`` purge? The tables' owner (and superusers) or the purge role."""
    return (
        "allowed := pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER'); "
        f"IF NOT allowed AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"allowed := pg_has_role(current_user, '{role}', 'MEMBER'); END IF; "
    )


def _pg_guards(role):
    op.execute(
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql "
        "SET search_path = pg_catalog, pg_temp AS $$ "
        "DECLARE through integer; allowed boolean; "
        "BEGIN "
        "IF TG_OP = 'DELETE' THEN "
        "EXECUTE format('SELECT COALESCE(MAX(through_seq), 0) FROM %I.audit_checkpoints', TG_TABLE_SCHEMA) INTO through; "
        + _allowed_sql(role) +
        f"IF allowed AND OLD.seq <= through AND OLD.occurred_at < (now() AT TIME ZONE 'UTC') - interval '{MIN_KEEP_DAYS} days' "
        "THEN RETURN OLD; END IF; "
        "END IF; "
        "RAISE EXCEPTION 'audit_events is append-only'; END; $$"
    )
    op.execute(
        "CREATE FUNCTION audit_checkpoints_insert_guard() RETURNS trigger LANGUAGE plpgsql "
        "SET search_path = pg_catalog, pg_temp AS $$ "
        "DECLARE allowed boolean; "
        "BEGIN "
        + _allowed_sql(role) +
        "IF allowed THEN RETURN NEW; END IF; "
        f"RAISE EXCEPTION 'audit_checkpoints: only the purge role ({role}) may write checkpoints'; END; $$"
    )
    op.execute(
        "CREATE TRIGGER audit_checkpoints_insert_guard BEFORE INSERT ON audit_checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_insert_guard()"
    )


def _sqlite_event_triggers(age_guard):
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.execute("CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
               "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")
    young = f" OR OLD.occurred_at >= datetime('now', '-{MIN_KEEP_DAYS} days')" if age_guard else ""
    op.execute("CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
               "WHEN OLD.seq > (SELECT COALESCE(MAX(through_seq), 0) FROM audit_checkpoints)" + young + " "
               "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")


def _sqlite_checkpoint_triggers():
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_checkpoints_no_{verb.lower()}")
        op.execute(f"CREATE TRIGGER audit_checkpoints_no_{verb.lower()} BEFORE {verb} ON audit_checkpoints "
                   "BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END")


def _lift_guards(postgres):
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        op.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
    else:
        for name in ("audit_events_no_update", "audit_events_no_delete", "audit_checkpoints_no_update",
                     "audit_checkpoints_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade():
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    op.create_table('password_reset_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset_requests')),
    sa.UniqueConstraint('uid', name=op.f('uq_password_reset_requests_uid'))
    )
    op.add_column('audit_events', sa.Column('key_id', sa.String(length=16), nullable=True))
    op.add_column('audit_checkpoints', sa.Column('key_id', sa.String(length=16), nullable=True))
    op.add_column('audit_checkpoints', sa.Column('signature', sa.String(length=64), nullable=True))
    op.add_column('audit_checkpoints', sa.Column('legacy', sa.Boolean(), nullable=True))

    _lift_guards(postgres)
    has_rows = conn.execute(sa.text("SELECT 1 FROM audit_events LIMIT 1")).first() is not None or \
        conn.execute(sa.text("SELECT 1 FROM audit_checkpoints LIMIT 1")).first() is not None
    if has_rows:
        try:
            _relink(conn, keyed=True)
        except BrokenTrail as exc:
            raise RuntimeError(
                f"Migration 0012 stopped: the audit trail does not verify by its old rules ({exc}), so it is not "
                "re-linked under the audit key (that would hide the break). Run `flask audit verify` with the "
                "previous release, investigate, restore a good backup if need be, then upgrade again.") from None

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('key_id', existing_type=sa.String(length=16), nullable=False)
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.alter_column('key_id', existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column('signature', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('legacy', existing_type=sa.Boolean(), nullable=False)

    if postgres:
        op.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        _pg_guards(_purge_role())
    else:
        # SQLite rebuilt both tables for the NOT NULL columns, which dropped their triggers.
        _sqlite_event_triggers(age_guard=True)
        _sqlite_checkpoint_triggers()


def downgrade():
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_insert_guard ON audit_checkpoints")
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoints_insert_guard()")
    _lift_guards(postgres)
    if conn.execute(sa.text("SELECT 1 FROM audit_events LIMIT 1")).first() is not None:
        try:
            _relink(conn, keyed=False)
        except BrokenTrail as exc:
            raise RuntimeError(f"Downgrade stopped: the keyed audit trail does not verify ({exc}).") from None
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.drop_column('legacy')
        batch_op.drop_column('signature')
        batch_op.drop_column('key_id')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('key_id')
    op.drop_table('password_reset_requests')
    if postgres:
        op.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        # The function as 0007 left it.
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "IF TG_OP = 'DELETE' THEN "
            "IF OLD.seq <= (SELECT COALESCE(MAX(through_seq), 0) FROM audit_checkpoints) THEN RETURN OLD; END IF; "
            "END IF; "
            "RAISE EXCEPTION 'audit_events is append-only'; END; $$"
        )
        op.execute("ALTER FUNCTION audit_events_append_only() RESET search_path")
    else:
        _sqlite_event_triggers(age_guard=False)
        _sqlite_checkpoint_triggers()
