"""users.session_generation: logout and a password change end every session of the user

Revision ID: 0010
Revises: 0009

Existing users start at 0; a session cookie made before the upgrade carries no generation and
counts as 0, so it goes on until its user logs out or changes the password.
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
