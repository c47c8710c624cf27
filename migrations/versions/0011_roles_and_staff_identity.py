"""roles as a membership table (a person may hold several), staff display name and licence

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:00:00.000000

Today's roles become rows of ``user_roles``: an operator stays an operator and a requester a
requester; an administrator, who until now had every staff right (the helpline's and the records
office's), gets every staff role: operator, supervisor, records clerk, privacy officer and admin.
``users.role`` goes; staff get a display name (encrypted like the address) and a professional
licence (type, number, state). ``audit_events.actor_role`` widens to hold several roles.

Downgrade: an account holding ``admin`` becomes an admin again; any other staff account an
operator (the only other old role: a records clerk or privacy officer without ``admin`` gains
the call log, so review those accounts); requesters stay requesters. The audit column narrows
back only when every stored value fits (the trail is append-only and hash-chained: a value is
never shortened).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

NEW_ROLES = ('operator', 'supervisor', 'records_clerk', 'privacy_officer', 'admin', 'requester')
OLD_ROLES = ('operator', 'admin', 'requester')
ADMIN_GETS = ('operator', 'supervisor', 'records_clerk', 'privacy_officer', 'admin')
LICENCE_TYPES = ('MD', 'DO', 'PsyD', 'PhD', 'LCSW', 'LMFT', 'LPCC', 'RN', 'NP', 'other')


def _role_enum(values):
    return sa.Enum(*values, name='role', native_enum=False, create_constraint=True, length=16)


def _sqlite_triggers(table):
    """(name, sql) of the triggers on ``table``: SQLite's batch mode rebuilds the table, which
    drops them; they are put back exactly as they were."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return []
    return list(bind.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                     "AND tbl_name = :t ORDER BY name"), {'t': table}))


def _set_actor_role_length(length):
    triggers = _sqlite_triggers('audit_events')
    for name, _sql in triggers:
        op.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('actor_role', existing_type=sa.String(), type_=sa.String(length=length),
                              existing_nullable=True)
    for _name, sql in triggers:
        op.execute(sql)


def upgrade():
    op.create_table(
        'user_roles',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', _role_enum(NEW_ROLES), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'role', name=op.f('pk_user_roles')),
    )
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.create_index('ix_user_roles_role_user_id', ['role', 'user_id'], unique=False)

    op.execute("INSERT INTO user_roles (user_id, role) SELECT id, role FROM users WHERE role IN ('operator', 'requester')")
    for role in ADMIN_GETS:
        op.execute(f"INSERT INTO user_roles (user_id, role) SELECT id, '{role}' FROM users WHERE role = 'admin'")

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_role_id')
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.drop_column('role')
        batch_op.add_column(sa.Column('display_name', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('licence_type', sa.Enum(*LICENCE_TYPES, name='licence_type', native_enum=False,
                                                              create_constraint=True, length=8), nullable=True))
        batch_op.add_column(sa.Column('licence_number', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('licence_state', sa.String(length=2), nullable=True))

    _set_actor_role_length(80)


def downgrade():
    bind = op.get_bind()
    longest = bind.execute(sa.text("SELECT max(length(actor_role)) FROM audit_events")).scalar() or 0
    if longest <= 16:
        _set_actor_role_length(16)
    else:
        print(f"audit_events.actor_role keeps its width: stored values are up to {longest} characters "
              "and the trail is never rewritten.")

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', _role_enum(OLD_ROLES), nullable=True))
    op.execute("UPDATE users SET role = 'requester' WHERE id IN (SELECT user_id FROM user_roles WHERE role = 'requester')")
    op.execute("UPDATE users SET role = 'operator' WHERE id IN "
               "(SELECT user_id FROM user_roles WHERE role IN ('operator', 'supervisor', 'records_clerk', "
               "'privacy_officer'))")
    op.execute("UPDATE users SET role = 'admin' WHERE id IN (SELECT user_id FROM user_roles WHERE role = 'admin')")
    # An account that held no role at all (never made by the app) is the least privileged kind.
    op.execute("UPDATE users SET role = 'requester' WHERE role IS NULL")

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('licence_state')
        batch_op.drop_column('licence_number')
        batch_op.drop_constraint(op.f('ck_users_licence_type'), type_='check')
        batch_op.drop_column('licence_type')
        batch_op.drop_column('display_name')
        batch_op.alter_column('role', existing_type=_role_enum(OLD_ROLES), nullable=False)
        batch_op.create_index('ix_users_role_id', ['role', 'id'], unique=False)

    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.drop_index('ix_user_roles_role_user_id')
    op.drop_table('user_roles')
