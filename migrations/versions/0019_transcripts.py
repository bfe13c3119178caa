"""Transcripts and their phrases, keyword lists and mentions

Revision ID: 0019
Revises: 0018

``transcripts`` (one per call: backend, status, error, attempts, the whole text, greeting said),
``transcript_phrases`` (side, start, end, text), ``keyword_lists`` (a project's words and
stems, the tag they give, greeting or not), ``keyword_mentions`` (call, list, word, side, time).

The search index (:mod:`calltracking.transcripts.search`): on SQLite the FTS5 table
``transcripts_fts`` over ``transcripts.text`` (external content, kept in sync by three
triggers); on PostgreSQL the GIN index ``transcripts_fts_gin`` on
``to_tsvector('simple', text)``, which PostgreSQL keeps current itself.
"""
from alembic import op
import sqlalchemy as sa

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

SIDES = "side IN ('caller', 'operator', 'mixed')"

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE transcripts_fts USING fts5(text, content='transcripts', "
    "content_rowid='call_id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER transcripts_fts_ai AFTER INSERT ON transcripts BEGIN "
    "INSERT INTO transcripts_fts(rowid, text) VALUES (new.call_id, new.text); END",
    "CREATE TRIGGER transcripts_fts_ad AFTER DELETE ON transcripts BEGIN "
    "INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.call_id, old.text); END",
    "CREATE TRIGGER transcripts_fts_au AFTER UPDATE OF text ON transcripts BEGIN "
    "INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.call_id, old.text); "
    "INSERT INTO transcripts_fts(rowid, text) VALUES (new.call_id, new.text); END",
]


def upgrade() -> None:
    op.create_table(
        "transcripts",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("greeting_said", sa.Boolean(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("status IN ('ok', 'error', 'failed')", name=op.f("ck_transcripts_status")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_transcripts_call_id_calls"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_transcripts")),
    )
    op.create_index("ix_transcripts_status_attempts", "transcripts", ["status", "attempts"])
    op.create_table(
        "transcript_phrases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("start_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("end_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.CheckConstraint(SIDES, name=op.f("ck_transcript_phrases_side")),
        sa.ForeignKeyConstraint(["call_id"], ["transcripts.call_id"],
                                name=op.f("fk_transcript_phrases_call_id_transcripts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_phrases")),
    )
    op.create_index(op.f("ix_transcript_phrases_call_id"), "transcript_phrases", ["call_id"])
    op.create_table(
        "keyword_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("words", sa.Text(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("greeting", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_keyword_lists_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyword_lists")),
    )
    op.create_index(op.f("ix_keyword_lists_project_id"), "keyword_lists", ["project_id"])
    op.create_table(
        "keyword_mentions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("at_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.CheckConstraint(SIDES, name=op.f("ck_keyword_mentions_side")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_keyword_mentions_call_id_calls"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["list_id"], ["keyword_lists.id"],
                                name=op.f("fk_keyword_mentions_list_id_keyword_lists"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyword_mentions")),
    )
    op.create_index(op.f("ix_keyword_mentions_call_id"), "keyword_mentions", ["call_id"])
    op.create_index(op.f("ix_keyword_mentions_list_id"), "keyword_mentions", ["list_id"])
    if op.get_bind().dialect.name == "sqlite":
        for sql in SQLITE_FTS:
            op.execute(sql)
    else:
        op.execute("CREATE INDEX transcripts_fts_gin ON transcripts USING gin (to_tsvector('simple', text))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("transcripts_fts_au", "transcripts_fts_ad", "transcripts_fts_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS transcripts_fts")
    else:
        op.execute("DROP INDEX IF EXISTS transcripts_fts_gin")
    op.drop_index(op.f("ix_keyword_mentions_list_id"), table_name="keyword_mentions")
    op.drop_index(op.f("ix_keyword_mentions_call_id"), table_name="keyword_mentions")
    op.drop_table("keyword_mentions")
    op.drop_index(op.f("ix_keyword_lists_project_id"), table_name="keyword_lists")
    op.drop_table("keyword_lists")
    op.drop_index(op.f("ix_transcript_phrases_call_id"), table_name="transcript_phrases")
    op.drop_table("transcript_phrases")
    op.drop_index("ix_transcripts_status_attempts", table_name="transcripts")
    op.drop_table("transcripts")
