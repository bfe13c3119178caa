"""The transcript search: one condition on ``calls.id`` for both databases.

What a search is: the words of the query (letters and digits, any script, any case), all of
which must be in the call's transcript; a word ending in ``*`` matches every word starting
with it (``достав*``: доставка, доставить). Punctuation and operators in the query are
ignored, so hostile input cannot change the query.

SQLite: the FTS5 table ``transcripts_fts`` (``unicode61`` tokenizer: Unicode case folding)
over ``transcripts.text``, kept in sync by triggers (migration 0019). PostgreSQL:
``to_tsvector('simple', text) @@ to_tsquery('simple', ...)`` with the GIN index
``transcripts_fts_gin``; the ``simple`` configuration lower-cases and never stems, so Russian
and English words match the same way.
"""
from __future__ import annotations

import re

from sqlalchemy import Boolean, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

#: the objects migration 0019 creates outside the models (the search index); a comparison of
#: the models with the database leaves them out (:func:`is_search_index`)
INDEX_PREFIX = "transcripts_fts"

_WORD = re.compile(r"[^\W_]+(\*?)")


def terms(query: str) -> list[tuple[str, bool]]:
    """The query's words, case-folded, with whether each is a prefix (``word*``)."""
    return [(m.group(0).rstrip("*").casefold(), bool(m.group(1))) for m in _WORD.finditer(query or "")][:20]


def fts5_query(query: str) -> str:
    """The FTS5 MATCH text: every word quoted (``"доставк"*`` for a prefix), all required."""
    return " ".join(f'"{w}"' + ("*" if p else "") for w, p in terms(query))


def tsquery(query: str) -> str:
    """The PostgreSQL ``to_tsquery`` text: ``доставк:* & pizza``."""
    return " & ".join(w + (":*" if p else "") for w, p in terms(query))


class TranscriptMatch(ColumnElement):
    """``<call id column> IN (calls whose transcript matches)``, compiled per dialect."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, call_id_column, query: str):
        self.call_id_column = call_id_column
        self.query = query


@compiles(TranscriptMatch, "sqlite")
def _sqlite(el, compiler, **kw):
    col = compiler.process(el.call_id_column, **kw)
    q = compiler.process(bindparam(None, fts5_query(el.query), unique=True), **kw)
    return f"{col} IN (SELECT rowid FROM transcripts_fts WHERE transcripts_fts MATCH {q})"


@compiles(TranscriptMatch, "postgresql")
def _postgresql(el, compiler, **kw):
    col = compiler.process(el.call_id_column, **kw)
    q = compiler.process(bindparam(None, tsquery(el.query), unique=True), **kw)
    return (f"{col} IN (SELECT call_id FROM transcripts "
            f"WHERE to_tsvector('simple', text) @@ to_tsquery('simple', {q}))")


def matches(call_id_column, query: str):
    """The condition "this call's transcript has every word of ``query``", or None when the
    query has no word (no condition)."""
    if not terms(query):
        return None
    return TranscriptMatch(call_id_column, query)


def is_search_index(name: str, type_: str, parent_names) -> bool:
    """An ``include_name`` hook for comparing the models with the database: False for the
    search index's table, triggers and index (they are not models)."""
    return not (name or "").startswith(INDEX_PREFIX)
