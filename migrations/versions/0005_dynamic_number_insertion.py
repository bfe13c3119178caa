"""dynamic number insertion schema

Pool assignment hints on tracking_numbers (held flag, last release time) with
the index that serves "never used first, then least recently released", the
pool's promo mode, and indexes for the release sweep and per-session promo codes.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
import calltracking.models  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("number_pools") as b:
        b.add_column(sa.Column("promo_mode", sa.String(10), nullable=False, server_default="off"))
    with op.batch_alter_table("tracking_numbers") as b:
        b.add_column(sa.Column("pool_held", sa.Boolean(), nullable=False, server_default=sa.text("false")))
        b.add_column(sa.Column("pool_released_at", calltracking.models.UTCDateTime(), nullable=True))
    op.create_index("ix_tracking_numbers_pool_free", "tracking_numbers",
                    ["pool_id", "pool_held", "pool_released_at", "id"])
    op.create_index("ix_pool_reservations_live_seen", "pool_reservations",
                    ["pool_id", "released_at", "last_seen_at"])
    op.create_index("ix_promo_codes_session", "promo_codes", ["session_id"])
    # Numbers that already have a live reservation are held.
    op.execute("UPDATE tracking_numbers SET pool_held = true WHERE id IN "
               "(SELECT tracking_number_id FROM pool_reservations WHERE released_at IS NULL)")


def downgrade() -> None:
    op.drop_index("ix_promo_codes_session", table_name="promo_codes")
    op.drop_index("ix_pool_reservations_live_seen", table_name="pool_reservations")
    op.drop_index("ix_tracking_numbers_pool_free", table_name="tracking_numbers")
    with op.batch_alter_table("tracking_numbers") as b:
        b.drop_column("pool_released_at")
        b.drop_column("pool_held")
    with op.batch_alter_table("number_pools") as b:
        b.drop_column("promo_mode")
