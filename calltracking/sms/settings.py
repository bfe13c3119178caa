"""The ``sms_*`` keys of ``[notify]``: which gateway sends text messages and how.

They are a part of :class:`calltracking.config.NotifyConfig` (this class is its base), with
the same field metadata (``conv``, ``doc``, ``secret``) as every other key of the file;
secrets are shown as ``********`` by ``calltracking config`` and never logged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

PROVIDERS = ("", "http", "twilio", "smsru", "smsc")
METHODS = ("POST", "GET")
CONTENT_TYPES = ("form", "json")
MAX_PARTS = 10


def _opt(default: Any, conv: Callable[[str], Any], doc: str = "", secret: bool = False):
    return field(default=default, metadata={"conv": conv, "doc": doc, "secret": secret})


def _text(v: str) -> str:
    return v.strip()


def _one_of(*options: str, upper: bool = False) -> Callable[[str], str]:
    def conv(v: str) -> str:
        s = v.strip().upper() if upper else v.strip().lower()
        if s not in options:
            raise ValueError(f"expected one of {', '.join(o or '(empty)' for o in options)}, got {v!r}")
        return s

    return conv


def _parts(v: str) -> int:
    try:
        n = int(v.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {v!r}") from None
    if not 1 <= n <= MAX_PARTS:
        raise ValueError(f"must be between 1 and {MAX_PARTS}, got {n}")
    return n


def _regex(v: str) -> str:
    s = v.strip()
    try:
        re.compile(s)
    except re.error as e:
        raise ValueError(f"not a regular expression: {e}") from None
    return s


def _header(v: str) -> str:
    s = v.strip()
    name, sep, value = s.partition(":")
    if s and (not sep or not name.strip() or not value.strip() or any(c in s for c in "\r\n")):
        raise ValueError("expected 'Name: value', e.g. 'Authorization: Bearer <token>'")
    return s


@dataclass(frozen=True)
class SmsSettings:
    sms_provider: str = _opt("", _one_of(*PROVIDERS), "SMS gateway: http (generic), twilio, smsru, "
                             "smsc; empty: SMS rules cannot send")
    sms_from: str = _opt("", _text, "Sender: a number or sender name ({from}; Twilio From or a "
                         "Messaging Service SID MG…)")
    sms_max_parts: int = _opt(3, _parts, "Longest message in parts; a longer one is trimmed and ends with …")
    sms_url: str = _opt("", _text, "http: the gateway URL ({to} {to_digits} {text} {from}); twilio, "
                        "smsru, smsc: another API base URL (a proxy, a test)")
    sms_method: str = _opt("POST", _one_of(*METHODS, upper=True), "http: GET or POST")
    sms_body: str = _opt("", _text, "http: the body template ({to} {to_digits} {text} {from})")
    sms_content_type: str = _opt("form", _one_of(*CONTENT_TYPES), "http: the body is form or json")
    sms_auth_header: str = _opt("", _header, "http: a header 'Name: value' sent with each request",
                                secret=True)
    sms_ok_regex: str = _opt("", _regex, "http: the answer must match this regular expression too")
    sms_account: str = _opt("", _text, "twilio: Account SID; smsc: login")
    sms_token: str = _opt("", _text, "twilio: Auth Token; smsru: api_id; smsc: password or API key "
                          "(with an empty sms_account)", secret=True)
