"""index for the dashboard's open requests by age (issue 22)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:10:00.000000

The dashboard counts the open requests received since each age bound (``intake/admin/dashboard.py``
``open_request_ages``). Through ``ix_records_requests_received`` (received_at, status) it read every
request received in the last two months and compared its status (11,000 entries at a million calls);
``ix_records_requests_status_received`` (status, received_at) seeks the open statuses and reads only the
open requests of each span.

Nothing else changes; downgrade drops it.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.create_index('ix_records_requests_status_received', ['status', 'received_at'], unique=False)


def downgrade():
    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_records_requests_status_received')
