"""job runs

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:20:00

One row per run of a periodic job (intake/ops/jobs.py): started, succeeded, failed, or abandoned
when its process died. The admin hub and the daily digest list the failures; the digest's own
runs make it go out once a day however many timers start it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('running', 'succeeded', 'failed', 'abandoned', name='job_status', native_enum=False, length=16, create_constraint=True), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_job_started', ['job', 'started_at'], unique=False)
        batch_op.create_index('ix_job_runs_status_started', ['status', 'started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_status_started')
        batch_op.drop_index('ix_job_runs_job_started')
    op.drop_table('job_runs')
