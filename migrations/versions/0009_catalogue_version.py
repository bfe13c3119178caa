"""catalogue version bumped by triggers: the FastAGI server re-reads its catalogue only on change

Revision ID: 0009
Revises: 0007

Note for later migrations: on SQLite, ``op.batch_alter_table`` on one of the WATCHED tables
rebuilds the table and drops its triggers; re-create them (``create_triggers`` below) in the
same migration. The FastAGI server still re-reads everything every 5 minutes without them.
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

# table -> the columns the AGI hooks' catalogue reads (calltracking/attribution/catalogue.py); inserts and
# deletes always count. Columns others update all day (exhaustion counters...) are left out.
WATCHED = {
    "projects": ("key", "timezone", "default_queue", "first_call_window_days"),
    "sources": ("name", "short_label"),
    "campaigns": ("name",),
    "number_pools": ("hold_seconds", "source_id"),
    "tracking_numbers": ("number", "project_id", "kind", "source_id", "campaign_id", "pool_id",
                         "active", "callerid_prefix", "record"),
    "routing_rules": None,           # every column matters
}
BUMP = "UPDATE catalogue_version SET version = version + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "catalogue_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_version")),
    )
    op.execute("INSERT INTO catalogue_version (id, version) VALUES (1, 0)")
    create_triggers()


def create_triggers(tables=None) -> None:
    """The bump triggers of ``tables`` (default: all WATCHED); PostgreSQL also gets the function."""
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute("CREATE OR REPLACE FUNCTION ct_bump_catalogue() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN {BUMP}; RETURN NULL; END $$")
    for table, cols in WATCHED.items():
        if tables is not None and table not in tables:
            continue
        upd = "UPDATE" if cols is None else f"UPDATE OF {', '.join(cols)}"
        for event, suffix in (("INSERT", "ins"), ("DELETE", "del"), (upd, "upd")):
            name = f"ct_catalogue_{table}_{suffix}"
            if pg:
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                           "FOR EACH STATEMENT EXECUTE FUNCTION ct_bump_catalogue()")
            else:
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {BUMP}; END")


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table in WATCHED:
        for suffix in ("ins", "del", "upd"):
            name = f"ct_catalogue_{table}_{suffix}"
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if pg else f"DROP TRIGGER IF EXISTS {name}")
    if pg:
        op.execute("DROP FUNCTION IF EXISTS ct_bump_catalogue()")
    op.drop_table("catalogue_version")
