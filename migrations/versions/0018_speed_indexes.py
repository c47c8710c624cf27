"""covering indexes for the dashboard's records figures (issue 22)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:45:00.000000

The dashboard's records figures read every request closed or received in the range (5,500 a month at a
million calls) with a row lookup each through ``(closed_at, status)`` and ``(received_at, status)``. These
two indexes hold every column those queries read, so SQLite and PostgreSQL answer them from the index
alone:

- ``ix_records_requests_closed_took`` (closed_at, received_at, due_on, status, decision_reason): requests
  closed in the range, on time and days to close (``intake/admin/dashboard.py`` ``closed_requests``), and
  the denials by reason (``denials_by_reason``);
- ``ix_records_requests_received_extended`` (received_at, extended_days): requests received in the
  range and how many were extended (``extensions_used``).

Nothing else changes; downgrade drops them.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.create_index('ix_records_requests_closed_took',
                              ['closed_at', 'received_at', 'due_on', 'status', 'decision_reason'], unique=False)
        batch_op.create_index('ix_records_requests_received_extended', ['received_at', 'extended_days'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_records_requests_received_extended')
        batch_op.drop_index('ix_records_requests_closed_took')
