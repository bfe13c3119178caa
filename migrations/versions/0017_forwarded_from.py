"""Forwarded calls

``calls.forwarded_from``: the number that forwarded the call to the tracking number (RDNIS);
``routing_rules.forwarded_from``: a rule that matches only calls forwarded from that number.
Both ``''`` by default. Plain ``ADD COLUMN`` / ``DROP COLUMN`` (SQLite >= 3.35): no table
rebuild, so the catalogue triggers of ``routing_rules`` (migration 0009) stay.

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLES = ("calls", "routing_rules")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("forwarded_from", sa.String(length=32), nullable=False,
                                       server_default=""))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "forwarded_from")
