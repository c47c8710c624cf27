"""helpline safety: why screen questions went unasked, the supervisor-consulted and identity-shared
safety actions, supervisors' notes on live calls, the 42 CFR 2.51(c) affiliation and discloser on
emergency disclosures (with the index the disclosures report pages on), and a resource's hours

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:29:51.675761

Existing calls get false for the two new safety flags (the server default fills them).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('call_supervisor_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_call_supervisor_notes_author_id_users')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_call_supervisor_notes_call_id_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_supervisor_notes')),
    sa.UniqueConstraint('uid', name=op.f('uq_call_supervisor_notes_uid'))
    )
    with op.batch_alter_table('call_supervisor_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_supervisor_notes_call_id'), ['call_id'], unique=False)

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unasked_reason', sa.Enum('caller_hung_up', 'third_party_did_not_know', 'caller_declined', 'emergency_first', 'other', name='unasked_reason', native_enum=False, create_constraint=True, length=32), nullable=True))
        batch_op.add_column(sa.Column('safety_supervisor', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('identity_shared', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('emergency_disclosures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('affiliation', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('disclosed_by_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_emergency_disclosures_disclosed_at_id', ['disclosed_at', 'id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_emergency_disclosures_disclosed_by_id_users'), 'users', ['disclosed_by_id'], ['id'])

    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hours', sa.String(length=200), nullable=True))



def downgrade():
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_column('hours')

    with op.batch_alter_table('emergency_disclosures', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_emergency_disclosures_disclosed_by_id_users'), type_='foreignkey')
        batch_op.drop_index('ix_emergency_disclosures_disclosed_at_id')
        batch_op.drop_column('disclosed_by_id')
        batch_op.drop_column('affiliation')

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_calls_unasked_reason'), type_='check')
        batch_op.drop_column('identity_shared')
        batch_op.drop_column('safety_supervisor')
        batch_op.drop_column('unasked_reason')

    with op.batch_alter_table('call_supervisor_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_supervisor_notes_call_id'))

    op.drop_table('call_supervisor_notes')
