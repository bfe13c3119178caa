"""whisper announcements per project and source

Revision ID: 0015
Revises: 0014

``whisper_projects``: a project's whisper on/off, text template and espeak-ng voice;
``whisper_sources``: a source's whisper on/off, text override and uploaded recording. New
tables only: ``projects`` and ``sources`` (and their catalogue triggers) are untouched.
"""
from alembic import op
import sqlalchemy as sa

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "whisper_projects",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("template", sa.String(length=300), nullable=False),
        sa.Column("voice", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("voice IN ('en', 'ru')", name=op.f("ck_whisper_projects_voice")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_whisper_projects_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_whisper_projects")),
    )
    op.create_table(
        "whisper_sources",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("upload", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name=op.f("fk_whisper_sources_source_id_sources"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_whisper_sources")),
    )


def downgrade() -> None:
    op.drop_table("whisper_sources")
    op.drop_table("whisper_projects")
