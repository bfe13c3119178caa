"""jobs, recordings and integrations schema

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
import calltracking.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_status",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_started_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("last_finished_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("last_ok_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("last_error_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_result", sa.String(length=200), nullable=False),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_status")),
    )
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", calltracking.models.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", calltracking.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_lease")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=True),
        sa.Column("target", sa.String(length=1000), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", calltracking.models.UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("created_at", calltracking.models.UTCDateTime(), nullable=False),
        sa.Column("sent_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.CheckConstraint("channel IN ('email', 'webhook', 'crm', 'ga4')",
                           name=op.f("ck_deliveries_channel")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name=op.f("ck_deliveries_status")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_deliveries_call_id_calls"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_deliveries_project_id_projects"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["rule_id"], ["notification_rules.id"],
                                name=op.f("fk_deliveries_rule_id_notification_rules"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("dedup_key", name="uq_deliveries_dedup_key"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_call_id"), ["call_id"], unique=False)
        batch_op.create_index("ix_deliveries_status_next", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "recording_info",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("format", sa.String(length=5), nullable=False),
        sa.Column("source_files", sa.Text(), nullable=False),
        sa.Column("duration_seconds", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("caller_talk_seconds", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("operator_talk_seconds", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("talk_ratio", sa.Numeric(precision=4, scale=3), nullable=True),
        sa.Column("longest_silence_seconds", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("purged_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('ok', 'missing', 'error', 'purged')",
                           name=op.f("ck_recording_info_status")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_recording_info_call_id_calls"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_recording_info")),
    )
    op.create_table(
        "recording_policies",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=False),
        sa.CheckConstraint("keep_days >= 0", name=op.f("ck_recording_policies_keep_days")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_recording_policies_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_recording_policies")),
    )


def downgrade() -> None:
    op.drop_table("recording_policies")
    op.drop_table("recording_info")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_next")
        batch_op.drop_index(batch_op.f("ix_deliveries_call_id"))
    op.drop_table("deliveries")
    op.drop_table("scheduler_lease")
    op.drop_table("job_status")
