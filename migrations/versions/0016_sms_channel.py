"""SMS as a notification channel

The channel CHECK constraints of ``notification_rules`` and ``deliveries`` are rebuilt from
:class:`calltracking.enums.NotificationChannel` with ``sms`` added (downgrade: without it; rules
and deliveries of the SMS channel are deleted first, since the old constraint refuses them).
The members are listed here, not the whole enum, so that a later channel stays a later migration.

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa

from calltracking.enums import NotificationChannel as C, check_in

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BEFORE = (C.EMAIL, C.WEBHOOK, C.CRM, C.GA4)
AFTER = BEFORE + (C.SMS,)
TABLES = ("notification_rules", "deliveries")


def _channels(values) -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"ck_{table}_channel"), type_="check")
            batch_op.create_check_constraint(batch_op.f(f"ck_{table}_channel"), check_in("channel", values))


def upgrade() -> None:
    _channels(AFTER)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM deliveries WHERE channel = 'sms'"))
    op.execute(sa.text("DELETE FROM notification_rules WHERE channel = 'sms'"))
    _channels(BEFORE)
