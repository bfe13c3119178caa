"""Conversation measures: interruptions and time to first operator word (recording_info)

Revision ID: 0020
Revises: 0019
"""
from alembic import op
import sqlalchemy as sa

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

COLUMNS = ("operator_interruptions", "caller_interruptions", "first_operator_word_seconds")


def upgrade() -> None:
    with op.batch_alter_table("recording_info") as t:
        t.add_column(sa.Column("operator_interruptions", sa.Integer(), nullable=True))
        t.add_column(sa.Column("caller_interruptions", sa.Integer(), nullable=True))
        t.add_column(sa.Column("first_operator_word_seconds", sa.Numeric(12, 3, asdecimal=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recording_info") as t:
        for name in reversed(COLUMNS):
            t.drop_column(name)
