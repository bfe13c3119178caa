"""web ui schema

Revision ID: 0004
Revises: 0003
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import calltracking.models  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _reports_upgrade()


def downgrade() -> None:
    _reports_downgrade()


# --- Reports (reports helper): rollup tables and indexes for reports ------------

def _reports_upgrade() -> None:
    op.create_index("ix_calls_updated_at", "calls", ["updated_at"])
    op.create_index("ix_calls_project_source_started", "calls",
                    ["project_id", "source_id", "started_at"])
    op.create_table(
        "report_daily",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("dim", sa.String(12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("first_calls", sa.Integer(), nullable=False),
        sa.Column("repeat_calls", sa.Integer(), nullable=False),
        sa.Column("wait_sum", sa.Numeric(18, 3), nullable=False),
        sa.Column("talk_sum", sa.Numeric(18, 3), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.Column("value_sum", sa.Numeric(18, 2), nullable=False),
        sa.Column("missed_rung", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE",
                                name="fk_report_daily_project_id_projects"),
        sa.PrimaryKeyConstraint("project_id", "dim", "day", "key", name="pk_report_daily"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_hourly",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("peak_concurrent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE",
                                name="fk_report_hourly_project_id_projects"),
        sa.PrimaryKeyConstraint("project_id", "day", "hour", name="pk_report_hourly"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("watermark", sa.DateTime(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_report_rollup_state"),
    )


def _reports_downgrade() -> None:
    op.drop_table("report_rollup_state")
    op.drop_table("report_hourly")
    op.drop_table("report_daily")
    op.drop_index("ix_calls_project_source_started", table_name="calls")
    op.drop_index("ix_calls_updated_at", table_name="calls")
