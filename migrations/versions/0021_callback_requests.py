"""Website callback requests and their attempts

New tables ``callback_settings`` (one row per project), ``callback_requests`` and
``callback_attempts``. The CHECK constraints of ``calls.attribution`` (``callback`` added) and
``notification_rules.event`` (``callback_unreached`` added) are rebuilt; the members are listed
here, not the whole enums, so that a later value stays a later migration. Downgrade: calls
attributed ``callback`` become ``none`` and the rules of the new event are deleted first, since
the old constraints refuse them.

Revision ID: 0021
Revises: 0020
"""
from alembic import op
import sqlalchemy as sa

from calltracking.enums import AttributionKind as A, NotificationEvent as E, check_in

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

ATTRIBUTION_BEFORE = (A.STATIC, A.DYNAMIC, A.PROMO, A.NONE)
ATTRIBUTION_AFTER = ATTRIBUTION_BEFORE + (A.CALLBACK,)
EVENT_BEFORE = (E.MISSED_CALL, E.CALL_FINISHED, E.DIGEST_DAILY, E.DIGEST_WEEKLY)
EVENT_AFTER = EVENT_BEFORE + (E.CALLBACK_UNREACHED,)
STATUSES = ("pending", "dialing", "reached", "unreached")
RESULTS = ("reached", "no_answer", "no_operator", "failed", "lost")


def _listed(column: str, values, nullable: bool = False) -> str:
    sql = f"{column} IN ({', '.join(repr(str(v)) for v in values)})"
    return f"{column} IS NULL OR {sql}" if nullable else sql


def _checks(attribution, events) -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_calls_attribution"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_calls_attribution"), check_in("attribution", attribution))
    with op.batch_alter_table("notification_rules", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_notification_rules_event"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_notification_rules_event"), check_in("event", events))


def upgrade() -> None:
    op.create_table(
        "callback_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay_seconds", sa.Integer(), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("max_calls_per_hour", sa.Integer(), nullable=False),
        sa.Column("allowed_regions", sa.String(length=200), nullable=False),
        sa.Column("outbound_context", sa.String(length=80), nullable=False),
        sa.Column("widget_delay_seconds", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_callback_settings_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_settings")),
        sa.UniqueConstraint("project_id", name=op.f("uq_callback_settings_project_id")),
    )
    op.create_table(
        "callback_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("visitor_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("client_key", sa.String(length=100), nullable=False),
        sa.Column("time_on_site_seconds", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("reached_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(_listed("status", STATUSES), name=op.f("ck_callback_requests_status")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_callback_requests_project_id_projects"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["visitor_sessions.id"],
                                name=op.f("fk_callback_requests_session_id_visitor_sessions"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name=op.f("fk_callback_requests_source_id_sources"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_callback_requests_campaign_id_campaigns"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_callback_requests_call_id_calls"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_requests")),
    )
    op.create_index("ix_callback_requests_phone_requested", "callback_requests", ["phone", "requested_at"])
    op.create_index("ix_callback_requests_project_requested", "callback_requests", ["project_id", "requested_at"])
    op.create_index("ix_callback_requests_status_next", "callback_requests", ["status", "next_attempt_at"])
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("operator_answered_at", sa.DateTime(), nullable=True),
        sa.Column("visitor_answered_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.String(length=12), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(_listed("result", RESULTS, nullable=True), name=op.f("ck_callback_attempts_result")),
        sa.ForeignKeyConstraint(["request_id"], ["callback_requests.id"],
                                name=op.f("fk_callback_attempts_request_id_callback_requests"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_callback_attempts_call_id_calls"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
    )
    op.create_index("ix_callback_attempts_request_id", "callback_attempts", ["request_id"])
    op.create_index("ix_callback_attempts_token", "callback_attempts", ["token"], unique=True)
    _checks(ATTRIBUTION_AFTER, EVENT_AFTER)


def downgrade() -> None:
    op.execute(sa.text("UPDATE calls SET attribution = 'none' WHERE attribution = 'callback'"))
    op.execute(sa.text("DELETE FROM notification_rules WHERE event = 'callback_unreached'"))
    _checks(ATTRIBUTION_BEFORE, EVENT_BEFORE)
    op.drop_table("callback_attempts")
    op.drop_table("callback_requests")
    op.drop_table("callback_settings")
