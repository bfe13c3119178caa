"""outbound calls detected by the AMI listener (callbacks close missed calls)

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import calltracking.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx_id", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("operator_name", sa.String(length=200), nullable=False),
        sa.Column("interface", sa.String(length=200), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("started_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("answered_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("ended_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("talk_seconds", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("originated_by_us", sa.Boolean(), nullable=False),
        sa.Column("callback_for_id", sa.Integer(), nullable=True),
        sa.Column("created_at", calltracking.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", calltracking.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('in_progress', 'answered', 'missed')",
                           name=op.f("ck_outbound_calls_status")),
        sa.ForeignKeyConstraint(["callback_for_id"], ["calls.id"],
                                name=op.f("fk_outbound_calls_callback_for_id_calls"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"],
                                name=op.f("fk_outbound_calls_operator_id_operators"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_outbound_calls_project_id_projects"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_calls")),
        sa.UniqueConstraint("pbx_id", "linkedid", name="uq_outbound_calls_pbx_linkedid"),
    )
    op.create_index("ix_outbound_calls_number_started", "outbound_calls", ["number", "started_at"])
    op.create_index("ix_outbound_calls_started", "outbound_calls", ["started_at"])
    op.create_index(op.f("ix_outbound_calls_operator_id"), "outbound_calls", ["operator_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbound_calls_operator_id"), table_name="outbound_calls")
    op.drop_index("ix_outbound_calls_started", table_name="outbound_calls")
    op.drop_index("ix_outbound_calls_number_started", table_name="outbound_calls")
    op.drop_table("outbound_calls")
