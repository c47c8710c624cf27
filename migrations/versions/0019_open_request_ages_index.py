"""index for the dashboard's open requests by age (issue 22)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:10:00.000000

The dashboard counts the open requests received since each age bound (``intake/admin/dashboard.py``
``open_request_ages``). Through ``ix_records_requests_received`` (received_at, status) it read every
request received in the last two months and compared its status (11,000 entries at a million calls);
``ix_records_requests_status_received`` (status, received_at) seeks the open statuses and reads only the
open requests of each span.

The kept facility days of the dashboard (``dashboard_call_hours`` rows whose figure starts with
"day:") now also hold the records requests' figures of the day. A day kept before this revision holds
only the calls' figures, and would be read as a day without a request: every kept day is forgotten
here, and counted again (calls from their kept hours, requests from the table) the next time a range
holds it. The kept hours stay. Downgrade drops the index (the days kept since stay valid for 0018's
code, which reads only their calls' figures).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.create_index('ix_records_requests_status_received', ['status', 'received_at'], unique=False)
    op.execute(sa.text("DELETE FROM dashboard_call_hours WHERE figure LIKE 'day:%'"))


def downgrade():
    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_records_requests_status_received')
