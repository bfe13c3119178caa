"""ami listener schema: stored events of calls, live-call index, listener state

Revision ID: 0003
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import calltracking.models

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ami_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pbx_id", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("at", calltracking.models.UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ami_events")),
    )
    with op.batch_alter_table("ami_events", schema=None) as batch_op:
        batch_op.create_index("ix_ami_events_pbx_linkedid", ["pbx_id", "linkedid"], unique=False)
        batch_op.create_index("ix_ami_events_at", ["at"], unique=False)

    op.create_table(
        "ami_calls",
        sa.Column("pbx_id", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.Column("first_event_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("last_event_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("pbx_id", "linkedid", name=op.f("pk_ami_calls")),
    )
    with op.batch_alter_table("ami_calls", schema=None) as batch_op:
        batch_op.create_index("ix_ami_calls_pbx_live", ["pbx_id", "live"], unique=False)

    op.create_table(
        "ami_listener_state",
        sa.Column("pbx_id", sa.String(length=64), nullable=False),
        sa.Column("connected_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("disconnected_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("last_event_at", calltracking.models.UTCDateTime(), nullable=True),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("unknown_events", sa.BigInteger(), nullable=False),
        sa.Column("malformed_frames", sa.BigInteger(), nullable=False),
        sa.Column("without_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("clock_skew_ms", sa.Integer(), nullable=True),
        sa.Column("classes", sa.Text(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("updated_at", calltracking.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pbx_id", name=op.f("pk_ami_listener_state")),
    )


def downgrade() -> None:
    op.drop_table("ami_listener_state")
    with op.batch_alter_table("ami_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_ami_calls_pbx_live")
    op.drop_table("ami_calls")
    with op.batch_alter_table("ami_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ami_events_at")
        batch_op.drop_index("ix_ami_events_pbx_linkedid")
    op.drop_table("ami_events")
