"""recipient links: a third party's copy by a one-time secure link, its access code sent separately

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 14:30:00.000000

- ``recipient_links``: one row per secure link e-mailed to the recipient of a disclosure (a third
  party under a consent, or a designated professional), with keyed hashes of its token and of its
  access code (never the secrets), the code's channel (telephone or post), the recipient's e-mail
  (encrypted), the files it gives, its expiry, its download budget and count, wrong codes and the lock.
- Coded value gained: a delivery by ``recipient_link``.

Downgrade drops the table; a request delivered by a recipient link must be gone first (its
delivery method would break the narrowed CHECK constraint), so downgrade refuses while one exists.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_OLD_METHODS = ('download', 'mail', 'pickup', 'inspection', 'fax')
_NEW_METHODS = _OLD_METHODS + ('recipient_link',)


def _enum(values, name, length):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade():
    op.create_table(
        'recipient_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uid', sa.String(length=32), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('disclosure_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('code_channel', _enum(('phone', 'post'), 'recipient_code_channel', 8), nullable=False),
        sa.Column('recipient_email', sa.Text(), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('document_ids', sa.String(length=500), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('max_downloads', sa.Integer(), nullable=False),
        sa.Column('download_count', sa.Integer(), nullable=False),
        sa.Column('failed_attempts', sa.Integer(), nullable=False),
        sa.Column('locked_at', sa.DateTime(), nullable=True),
        sa.Column('opened_at', sa.DateTime(), nullable=True),
        sa.Column('last_download_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_recipient_links_created_by_id_users')),
        sa.ForeignKeyConstraint(['disclosure_id'], ['disclosures.id'],
                                name=op.f('fk_recipient_links_disclosure_id_disclosures')),
        sa.ForeignKeyConstraint(['request_id'], ['records_requests.id'],
                                name=op.f('fk_recipient_links_request_id_records_requests'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_recipient_links_revoked_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recipient_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_recipient_links_token_hash')),
        sa.UniqueConstraint('uid', name=op.f('uq_recipient_links_uid')),
    )
    with op.batch_alter_table('recipient_links', schema=None) as batch_op:
        batch_op.create_index('ix_recipient_links_request', ['request_id', 'id'], unique=False)

    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.alter_column('delivery_method', existing_type=_enum(_OLD_METHODS, 'delivery_method', 16),
                              type_=_enum(_NEW_METHODS, 'delivery_method', 16), existing_nullable=True)


def downgrade():
    bind = op.get_bind()
    linked = bind.execute(sa.text(
        "SELECT count(*) FROM records_requests WHERE delivery_method = 'recipient_link'")).scalar() or 0
    if linked:
        raise RuntimeError(f"{linked} records requests were delivered by a recipient link; keep revision 0016")
    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.alter_column('delivery_method', existing_type=_enum(_NEW_METHODS, 'delivery_method', 16),
                              type_=_enum(_OLD_METHODS, 'delivery_method', 16), existing_nullable=True)
    with op.batch_alter_table('recipient_links', schema=None) as batch_op:
        batch_op.drop_index('ix_recipient_links_request')
    op.drop_table('recipient_links')
