"""records law at every disclosure: the disclosure gate's record, staff-entered requests, licensed
professionals on a request, and the archive's retention floor and legal hold

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 09:00:00.000000

- ``records_requests``: the owner becomes optional (a request received on paper has no account until
  one is linked); how the request arrived (``channel``, ``portal`` for every existing one) and who
  entered it; the language of letters to a requester without an account and of everything sent to a
  third party (English for every existing request); the licence of whoever made a clinical denial and
  of its reviewer.
- ``disclosures``: what made each one lawful (``basis``, ``consent`` for every existing row: the old
  code logged only those), how it left, which §2.32 notice in which language, the 2.51 affiliation,
  the addenda sent with it, and the designated professional it went to.
- ``licensed_professionals``: outside professionals' clinical decisions and reviews, and the
  professionals patients designate (H&S 123115(b)).
- ``archived_patients``: the computed retention floor (empty until ``flask archive retention-floors``
  or the next edit computes it: an empty floor is never offered for destruction) and a legal hold.
- Coded values gained: a delivery by fax; a scanned request and a professional's decision as
  documents; the AB 2520 free-copy reasons; the "licensed professional" timeline entry.

Downgrade refuses while a request has no account (the old schema needs one) and drops what was added;
values only the new code writes (a fax delivery, the new fee reasons, the new documents and events)
must be gone first, or the narrowed CHECK constraints would refuse the table copy.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

LICENCE_TYPES = ('MD', 'DO', 'PsyD', 'PhD', 'LCSW', 'LMFT', 'LPCC', 'RN', 'NP', 'other')
_OLD_EVENT_KINDS = ('submitted', 'status', 'message', 'note', 'assigned', 'extended', 'clock_paused', 'clock_resumed',
                    'delivered', 'document', 'fee_estimate')
_NEW_EVENT_KINDS = _OLD_EVENT_KINDS + ('professional',)
_OLD_FILE_KINDS = ('photo_id', 'proof_of_authority', 'requester_other', 'released_record', 'letter', 'internal')
_NEW_FILE_KINDS = _OLD_FILE_KINDS + ('request_scan', 'professional')
_OLD_FEE_BASES = ('paper', 'microfilm', 'electronic_flat', 'benefits_appeal', 'waived')
_NEW_FEE_BASES = ('paper', 'microfilm', 'electronic_flat', 'benefits_appeal', 'u_visa', 'vawa_self_petition',
                  'legal_aid_benefits', 'waived')
_OLD_METHODS = ('download', 'mail', 'pickup', 'inspection')
_NEW_METHODS = _OLD_METHODS + ('fax',)
_CHANNELS = ('portal', 'mail', 'fax', 'in_person', 'phone_writing')


def _enum(values, name, length):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade():
    op.create_table(
        'licensed_professionals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uid', sa.String(length=32), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('role', _enum(('denial', 'review', 'designated'), 'professional_role', 16), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('licence_type', _enum(LICENCE_TYPES, 'professional_licence_type', 8), nullable=False),
        sa.Column('licence_number', sa.String(length=20), nullable=False),
        sa.Column('licence_state', sa.String(length=2), nullable=False),
        sa.Column('address', sa.Text(), nullable=True),
        sa.Column('decided_on', sa.Date(), nullable=True),
        sa.Column('decision', sa.String(length=32), nullable=True),
        sa.Column('document_id', sa.Integer(), nullable=True),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['request_documents.id'],
                                name=op.f('fk_licensed_professionals_document_id_request_documents')),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'],
                                name=op.f('fk_licensed_professionals_recorded_by_id_users')),
        sa.ForeignKeyConstraint(['request_id'], ['records_requests.id'],
                                name=op.f('fk_licensed_professionals_request_id_records_requests'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_licensed_professionals')),
        sa.UniqueConstraint('uid', name=op.f('uq_licensed_professionals_uid')),
    )
    with op.batch_alter_table('licensed_professionals', schema=None) as batch_op:
        batch_op.create_index('ix_licensed_professionals_request', ['request_id', 'role', 'id'], unique=False)

    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.alter_column('owner_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('channel', _enum(_CHANNELS, 'request_channel', 16), nullable=False,
                                      server_default='portal'))
        batch_op.add_column(sa.Column('entered_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('requester_language', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('recipient_language', sa.String(length=8), nullable=False, server_default='en'))
        batch_op.add_column(sa.Column('decision_licence', sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column('review_licence', sa.String(length=48), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_records_requests_entered_by_id_users'), 'users',
                                    ['entered_by_id'], ['id'])
        batch_op.alter_column('delivery_method', existing_type=_enum(_OLD_METHODS, 'delivery_method', 16),
                              type_=_enum(_NEW_METHODS, 'delivery_method', 16), existing_nullable=True)

    with op.batch_alter_table('disclosures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('professional_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('basis', _enum(('consent', 'emergency', 'designated'), 'disclosure_basis', 16),
                                      nullable=False, server_default='consent'))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('affiliation', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('notice_version', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('notice_language', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('addenda_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_foreign_key(batch_op.f('fk_disclosures_professional_id_licensed_professionals'),
                                    'licensed_professionals', ['professional_id'], ['id'])

    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=_enum(_OLD_EVENT_KINDS, 'request_event_kind', 16),
                              type_=_enum(_NEW_EVENT_KINDS, 'request_event_kind', 16), existing_nullable=False)
    with op.batch_alter_table('request_documents', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=_enum(_OLD_FILE_KINDS, 'file_kind', 24),
                              type_=_enum(_NEW_FILE_KINDS, 'file_kind', 24), existing_nullable=False)
    with op.batch_alter_table('fee_estimates', schema=None) as batch_op:
        batch_op.alter_column('basis', existing_type=_enum(_OLD_FEE_BASES, 'fee_basis', 24),
                              type_=_enum(_NEW_FEE_BASES, 'fee_basis', 24), existing_nullable=False)

    with op.batch_alter_table('archived_patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retention_floor', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('hold_reason', sa.Text(), nullable=True))


def downgrade():
    bind = op.get_bind()
    orphans = bind.execute(sa.text("SELECT count(*) FROM records_requests WHERE owner_id IS NULL")).scalar() or 0
    if orphans:
        raise RuntimeError(f"{orphans} records requests have no account (entered from paper); link an account to "
                           "each, or keep revision 0014")

    with op.batch_alter_table('archived_patients', schema=None) as batch_op:
        batch_op.drop_column('hold_reason')
        batch_op.drop_column('legal_hold')
        batch_op.drop_column('retention_floor')

    with op.batch_alter_table('fee_estimates', schema=None) as batch_op:
        batch_op.alter_column('basis', existing_type=_enum(_NEW_FEE_BASES, 'fee_basis', 24),
                              type_=_enum(_OLD_FEE_BASES, 'fee_basis', 24), existing_nullable=False)
    with op.batch_alter_table('request_documents', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=_enum(_NEW_FILE_KINDS, 'file_kind', 24),
                              type_=_enum(_OLD_FILE_KINDS, 'file_kind', 24), existing_nullable=False)
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=_enum(_NEW_EVENT_KINDS, 'request_event_kind', 16),
                              type_=_enum(_OLD_EVENT_KINDS, 'request_event_kind', 16), existing_nullable=False)

    with op.batch_alter_table('disclosures', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_disclosures_professional_id_licensed_professionals'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('ck_disclosures_disclosure_basis'), type_='check')
        batch_op.drop_column('addenda_count')
        batch_op.drop_column('notice_language')
        batch_op.drop_column('notice_version')
        batch_op.drop_column('affiliation')
        batch_op.drop_column('channel')
        batch_op.drop_column('basis')
        batch_op.drop_column('professional_id')

    with op.batch_alter_table('records_requests', schema=None) as batch_op:
        batch_op.alter_column('delivery_method', existing_type=_enum(_NEW_METHODS, 'delivery_method', 16),
                              type_=_enum(_OLD_METHODS, 'delivery_method', 16), existing_nullable=True)
        batch_op.drop_constraint(batch_op.f('fk_records_requests_entered_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('ck_records_requests_request_channel'), type_='check')
        batch_op.drop_column('review_licence')
        batch_op.drop_column('decision_licence')
        batch_op.drop_column('recipient_language')
        batch_op.drop_column('requester_language')
        batch_op.drop_column('entered_by_id')
        batch_op.drop_column('channel')
        batch_op.alter_column('owner_id', existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table('licensed_professionals', schema=None) as batch_op:
        batch_op.drop_index('ix_licensed_professionals_request')
    op.drop_table('licensed_professionals')
