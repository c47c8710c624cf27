"""timeline entries as codes worded when read, and the language of each letter

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:30:00.000000

- ``request_events``: ``code`` (what the system says, as an ``EventCode``) and ``params`` (its
  parameters as JSON, encrypted like ``body``: they can hold a recipient's name or a reason staff
  typed). ``intake.records.timeline.describe`` words them in the reader's language when a page is
  drawn. ``body`` keeps only what people type (messages, notes, the message sent with a move).
- ``request_documents``: ``language``, the language a letter was written in ("Letter sent in Spanish").
- ``disclosures``: ``wording``, the facts behind ``description`` and ``purpose`` (the request's scope,
  a coded purpose; JSON, encrypted), so the accounting a requester reads is worded in their language;
  the two columns keep the words written at the time, in the recipient's language.

Existing rows: a timeline entry written before this revision keeps its text in ``body``, in the
language it was written in, with no code, and pages show it as written; nothing is rewritten (the
texts are encrypted and a move's text mixes the system's words with the message staff typed, so
no pattern can split them safely). Existing letters have no recorded language and say none; existing
disclosures have no wording and the accounting shows their words as written.

Downgrade: entries with a code have no text in the old schema, so downgrade writes each one's words
(in English, the default language) into ``body`` before dropping the columns, after the message
a move carried; nothing a reader could see is lost.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column('params', sa.Text(), nullable=True))
    with op.batch_alter_table('request_documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
    with op.batch_alter_table('disclosures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wording', sa.Text(), nullable=True))


def downgrade():
    _word_coded_events()
    with op.batch_alter_table('disclosures', schema=None) as batch_op:
        batch_op.drop_column('wording')
    with op.batch_alter_table('request_documents', schema=None) as batch_op:
        batch_op.drop_column('language')
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_column('params')
        batch_op.drop_column('code')


def _word_coded_events():
    """Write each coded entry's words into ``body`` (the encrypted columns need the app's keys:
    through the ORM, in the app's context, as ``flask db downgrade`` runs)."""
    bind = op.get_bind()
    if not bind.execute(sa.text("SELECT 1 FROM request_events WHERE code IS NOT NULL LIMIT 1")).first():
        return
    from flask_babel import force_locale
    from sqlalchemy.orm import Session

    from intake.records.models import RequestEvent
    from intake.records.timeline import describe

    session = Session(bind=bind)
    for event in session.query(RequestEvent).filter(RequestEvent.code.is_not(None)):
        with force_locale('en'):
            event.body = describe(event, 'en').full
    session.flush()
