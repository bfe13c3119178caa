"""Qualified (target) calls: per-project rules and predefined tags

``target_rules`` (a project's rules) and ``target_rule_tags`` (the tags a rule adds): new
tables. ``calls`` gains ``is_target``, ``target_rule_id`` and ``qualified_at`` with two indexes;
``tags`` gains ``description`` and ``offered``; ``notification_rules`` ``target_only``;
``report_daily`` ``targets``. Plain ``ADD COLUMN`` / ``DROP COLUMN`` everywhere but ``calls`` on
SQLite, which is rebuilt (``batch_alter_table``) because SQLite adds or drops a foreign-key column
only that way; ``calls`` has no trigger to lose (the catalogue triggers of 0009 are on other
tables), and its indexes and constraints are re-created by the rebuild. Measured on the shared 2-core
machine: 200,000 calls rebuilt in 5.3 s (up) and 5.5 s (down), about half a minute per million.

Revision ID: 0018
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _false():
    return sa.text("false")


def upgrade() -> None:
    op.create_table(
        "target_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("min_talk_seconds", sa.Integer(), nullable=True),
        sa.Column("first_call_only", sa.Boolean(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.Column("weekdays", sa.String(length=7), nullable=False),
        sa.Column("time_from", sa.Time(), nullable=True),
        sa.Column("time_to", sa.Time(), nullable=True),
        sa.Column("mark_target", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_target_rules_project_id_projects"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name=op.f("fk_target_rules_source_id_sources"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_target_rules_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"],
                                name=op.f("fk_target_rules_tag_id_tags"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target_rules")),
    )
    op.create_index("ix_target_rules_project_position", "target_rules", ["project_id", "position"])
    op.create_table(
        "target_rule_tags",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["target_rules.id"],
                                name=op.f("fk_target_rule_tags_rule_id_target_rules"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"],
                                name=op.f("fk_target_rule_tags_tag_id_tags"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id", "tag_id", name=op.f("pk_target_rule_tags")),
    )
    columns = [sa.Column("is_target", sa.Boolean(), nullable=False, server_default=_false()),
               sa.Column("target_rule_id", sa.Integer(), nullable=True),
               sa.Column("qualified_at", sa.DateTime(), nullable=True)]
    fk = (op.f("fk_calls_target_rule_id_target_rules"), "target_rules", ["target_rule_id"], ["id"])
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("calls", recreate="always") as batch:
            for col in columns:
                batch.add_column(col)
            batch.create_foreign_key(*fk, ondelete="SET NULL")
    else:
        for col in columns:
            op.add_column("calls", col)
        op.create_foreign_key(fk[0], "calls", *fk[1:], ondelete="SET NULL")
    op.create_index("ix_calls_project_target_started", "calls", ["project_id", "is_target", "started_at"])
    op.create_index("ix_calls_unqualified", "calls", ["ended_at"],
                    sqlite_where=sa.text("qualified_at IS NULL"),
                    postgresql_where=sa.text("qualified_at IS NULL"))
    op.add_column("tags", sa.Column("description", sa.String(length=500), nullable=False, server_default=""))
    op.add_column("tags", sa.Column("offered", sa.Boolean(), nullable=False, server_default=_false()))
    op.add_column("notification_rules", sa.Column("target_only", sa.Boolean(), nullable=False,
                                                  server_default=_false()))
    op.add_column("report_daily", sa.Column("targets", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("report_daily", "targets")
    op.drop_column("notification_rules", "target_only")
    op.drop_column("tags", "offered")
    op.drop_column("tags", "description")
    op.drop_index("ix_calls_unqualified", table_name="calls")
    op.drop_index("ix_calls_project_target_started", table_name="calls")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("calls", recreate="always") as batch:
            batch.drop_column("target_rule_id")
            batch.drop_column("qualified_at")
            batch.drop_column("is_target")
    else:
        op.drop_constraint(op.f("fk_calls_target_rule_id_target_rules"), "calls", type_="foreignkey")
        op.drop_column("calls", "target_rule_id")
        op.drop_column("calls", "qualified_at")
        op.drop_column("calls", "is_target")
    op.drop_table("target_rule_tags")
    op.drop_index("ix_target_rules_project_position", table_name="target_rules")
    op.drop_table("target_rules")
