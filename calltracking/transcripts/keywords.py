"""Keyword spotting: a project's word lists applied to a call's transcript.

A list's entries are one per line (or comma-separated): a word (``price``), a stem ending in
``*`` (``достав*``: доставка, доставить, доставкой) or several words said in a row
(``thank you``; the last may be a stem). Matching is on words — letters and digits of any
script — case-folded, so ``Доставка`` matches ``достав*`` and ``PRICE`` matches ``price``.

Applying the lists to a call (:func:`apply`) replaces its mentions (one per entry found, per
phrase: the side and the phrase's start), puts each matched list's tag on the call (the tag is
created in the project when missing; tags are only added, so an operator's tags stay) and sets
``transcripts.greeting_said``: None when the project has no greeting list or the recording has
no operator side, else whether a greeting list's entry was said by the operator within the
first ``greeting_seconds``. It runs right after a transcript is stored and again on demand
(``calltracking transcripts reapply``, the settings page).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from calltracking.enums import TranscriptSide
from calltracking.models import Call, KeywordList, KeywordMention, Tag, Transcript, TranscriptPhrase

_WORD = re.compile(r"[^\W_]+")
MAX_ENTRIES = 500
MAX_ENTRY = 100


class KeywordError(ValueError):
    """A word list is invalid: ``code`` says which rule (``entry_long``, ``star``, ``no_word``,
    ``too_many``, ``name``, ``tag``, ``empty``, ``duplicate``, ``missing``), ``value`` the
    entry or name concerned; the message is the English text."""

    def __init__(self, code: str, message: str, value: str = ""):
        super().__init__(message)
        self.code, self.value = code, value


@dataclass(frozen=True)
class Entry:
    """One entry of a list: its text as written and its words (the last one a stem when ``stem``)."""

    text: str
    words: tuple[str, ...]
    stem: bool


def parse(words: str) -> list[Entry]:
    """The entries of a list's text; raises :class:`KeywordError` for an entry with no word, a
    ``*`` anywhere but at the end, or too many/too long entries."""
    out, seen = [], set()
    for raw in re.split(r"[\n,;]", words or ""):
        s = " ".join(raw.split())
        if not s:
            continue
        if len(s) > MAX_ENTRY:
            raise KeywordError("entry_long", f"{s[:30]}…: an entry is at most {MAX_ENTRY} characters", s[:30])
        stem = s.endswith("*")
        body = s[:-1] if stem else s
        if "*" in body:
            raise KeywordError("star", f"{s}: '*' may only end an entry (a stem such as достав*)", s)
        tokens = tuple(w.casefold() for w in _WORD.findall(body))
        if not tokens:
            raise KeywordError("no_word", f"{s}: no word in it", s)
        key = (tokens, stem)
        if key not in seen:
            seen.add(key)
            out.append(Entry(s.casefold(), tokens, stem))
    if len(out) > MAX_ENTRIES:
        raise KeywordError("too_many", f"a list holds at most {MAX_ENTRIES} entries")
    return out


def normalized(words: str) -> str:
    """The list's text as stored: one entry per line, as the user wrote it (blanks trimmed)."""
    parse(words)
    return "\n".join(" ".join(r.split()) for r in re.split(r"[\n,;]", words or "") if r.strip())


def found_in(entry: Entry, text: str) -> bool:
    """Whether ``entry`` is said in ``text``."""
    tokens = [w.casefold() for w in _WORD.findall(text)]
    n = len(entry.words)
    for i in range(len(tokens) - n + 1):
        window = tokens[i:i + n]
        if window[:-1] != list(entry.words[:-1]):
            continue
        last = window[-1]
        if last == entry.words[-1] or (entry.stem and last.startswith(entry.words[-1])):
            return True
    return False


def _tag(session: Session, project_id: int, name: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.project_id == project_id, Tag.name == name))
    if tag is None:
        tag = Tag(project_id=project_id, name=name, color="")
        session.add(tag)
        session.flush()
    return tag


def apply(session: Session, call_id: int, greeting_seconds: float) -> list[KeywordMention]:
    """Apply the call's project's lists to its transcript (see the module's docstring).
    Returns the mentions stored; nothing happens for a call without a transcript."""
    call = session.get(Call, call_id)
    transcript = session.get(Transcript, call_id)
    if call is None or transcript is None:
        return []
    session.execute(delete(KeywordMention).where(KeywordMention.call_id == call_id))
    lists = (list(session.scalars(select(KeywordList).where(KeywordList.project_id == call.project_id)
                                  .order_by(KeywordList.id))) if call.project_id is not None else [])
    phrases = list(session.scalars(select(TranscriptPhrase).where(TranscriptPhrase.call_id == call_id)
                                   .order_by(TranscriptPhrase.start_seconds, TranscriptPhrase.id)))
    mentions: list[KeywordMention] = []
    greeting = None
    has_operator = not any(p.side == TranscriptSide.MIXED for p in phrases)   # mono: no operator side
    for kl in lists:
        try:
            entries = parse(kl.words)
        except KeywordError:
            continue   # saved before a rule tightened: skipped, the settings page shows why
        matched = False
        for p in phrases:
            for e in entries:
                if found_in(e, p.text):
                    matched = True
                    mentions.append(KeywordMention(call_id=call_id, list_id=kl.id, word=e.text[:100],
                                                   side=p.side, at_seconds=Decimal(p.start_seconds)))
        if matched and (kl.tag or kl.name):
            tag = _tag(session, call.project_id, (kl.tag or kl.name)[:100])
            if tag not in call.tags:
                call.tags.append(tag)
        if kl.greeting and has_operator:
            said = any(m.list_id == kl.id and m.side == TranscriptSide.OPERATOR
                       and float(m.at_seconds) <= greeting_seconds for m in mentions)
            greeting = bool(greeting) or said
    session.add_all(mentions)
    transcript.greeting_said = greeting
    session.flush()
    return mentions


def reapply(session: Session, project_id: int, greeting_seconds: float) -> int:
    """Apply the lists again to every transcribed call of a project; returns the calls done."""
    ids = list(session.scalars(select(Transcript.call_id).join(Call, Call.id == Transcript.call_id)
                               .where(Call.project_id == project_id, Transcript.status == "ok")))
    for cid in ids:
        apply(session, cid, greeting_seconds)
    return len(ids)
