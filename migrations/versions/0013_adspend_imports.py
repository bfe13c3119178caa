"""ad-spend import batches: ad_spend_imports, ad_spend.import_id

Revision ID: 0013
Revises: 0012

Each CSV import of ad spend (web upload or ``spend import``) is recorded in ``ad_spend_imports``
(project, file name, who, when, rows, total); the rows it wrote point to it through the nullable
``ad_spend.import_id`` (rows added otherwise and rows imported before this revision have none).
On SQLite the column and its foreign key are added by a batch (table rebuild): ``ad_spend`` has
no triggers and no table refers to it.
"""
from alembic import op
import sqlalchemy as sa

from calltracking.models.base import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ad_spend_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("total", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_ad_spend_imports_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_spend_imports")),
    )
    op.create_index(op.f("ix_ad_spend_imports_project_id"), "ad_spend_imports", ["project_id"])
    with op.batch_alter_table("ad_spend") as batch:
        batch.add_column(sa.Column("import_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_ad_spend_import_id_ad_spend_imports"), "ad_spend_imports",
                                 ["import_id"], ["id"], ondelete="CASCADE")
        batch.create_index(op.f("ix_ad_spend_import_id"), ["import_id"])


def downgrade() -> None:
    with op.batch_alter_table("ad_spend") as batch:
        batch.drop_index(op.f("ix_ad_spend_import_id"))
        batch.drop_constraint(op.f("fk_ad_spend_import_id_ad_spend_imports"), type_="foreignkey")
        batch.drop_column("import_id")
    op.drop_index(op.f("ix_ad_spend_imports_project_id"), table_name="ad_spend_imports")
    op.drop_table("ad_spend_imports")
