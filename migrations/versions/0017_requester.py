"""the requester's answer to a cost estimate

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:30:00.000000

- ``fee_estimates``: the requester's decision on the estimate (``accepted`` or ``declined``; empty
  until they answer, so every existing estimate is still waiting for one) and when they gave it.

Downgrade drops both columns (the answers are also on the request's timeline and in the audit trail).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('fee_estimates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decision', sa.Enum('accepted', 'declined', name='fee_decision',
                                                          native_enum=False, create_constraint=True, length=16),
                                      nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('fee_estimates', schema=None) as batch_op:
        # The enum column's CHECK constraint goes first, or SQLite's table copy still names the column.
        batch_op.drop_constraint(batch_op.f('ck_fee_estimates_fee_decision'), type_='check')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('decision')
