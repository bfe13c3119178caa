"""Stored calls as users see them: the journal, the missed-calls worklist, exports, click-to-call."""
