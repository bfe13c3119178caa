"""where and when the DNI snippet last ran: dni_snippet_pings (one row per project and page origin)

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa

from calltracking.models.base import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dni_snippet_pings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("last_path", sa.String(length=500), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("pings", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_dni_snippet_pings_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dni_snippet_pings")),
        sa.UniqueConstraint("project_id", "origin", name="uq_dni_snippet_pings_project_origin"),
    )


def downgrade() -> None:
    op.drop_table("dni_snippet_pings")
