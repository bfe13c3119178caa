"""automatic sources: sources.auto and source_aliases (utm_source / utm_medium → source)

Revision ID: 0011
Revises: 0010

A visit whose tags name no source gets an automatic source ``<utm_source> / <utm_medium>``
(calltracking/sources.py); ``source_aliases`` remembers where such tags go, so a merge or a
rename is not undone by the next visit. ``sources.auto`` is added with ``ADD COLUMN`` (no table
rebuild on SQLite: the catalogue triggers of ``sources`` stay).
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("auto", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.create_table(
        "source_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("utm_source", sa.String(length=200), nullable=False),
        sa.Column("utm_medium", sa.String(length=200), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_source_aliases_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_source_aliases_source_id_sources"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_aliases")),
        sa.UniqueConstraint("project_id", "utm_source", "utm_medium", name="uq_source_aliases_key"),
    )
    op.create_index(op.f("ix_source_aliases_source_id"), "source_aliases", ["source_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_source_aliases_source_id"), table_name="source_aliases")
    op.drop_table("source_aliases")
    # a plain DROP COLUMN (SQLite >= 3.35): no table rebuild, the catalogue triggers of sources stay
    op.drop_column("sources", "auto")
