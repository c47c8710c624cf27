"""users.locale: the language each account chose, so e-mails and letters sent later follow it

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:00:00.000000

Nullable: an account that never chose a language gets its pages in the browser's language and
its mail in English (or in the language of the pages it was using when the mail was caused).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')
