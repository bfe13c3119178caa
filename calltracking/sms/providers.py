"""SMS gateways: the HTTP request that sends one message to one number, and how the
gateway's answer says it was accepted.

``[notify] sms_provider`` picks one (settings: :mod:`calltracking.sms.settings`):

* ``http`` — any gateway with an HTTP API: ``sms_url`` (``GET`` or ``POST``, ``sms_method``),
  ``sms_body`` (``form`` or ``json``, ``sms_content_type``; empty: ``to``, ``text``, ``from``
  fields), both with the placeholders ``{to}`` (E.164, ``+79991234567``), ``{to_digits}``
  (``79991234567``), ``{text}`` and ``{from}`` (``sms_from``), each escaped for where it lands
  (URL-encoded in the URL and a form, JSON-escaped in JSON); ``sms_auth_header`` is sent as
  it is. Accepted: a 2xx answer that also matches ``sms_ok_regex`` when one is set.
* ``twilio`` — Twilio's Messages API: ``POST /2010-04-01/Accounts/<sms_account>/Messages.json``,
  form fields ``To``, ``Body`` and ``From`` (or ``MessagingServiceSid`` when ``sms_from`` is a
  Messaging Service SID ``MG…``), HTTP Basic auth ``sms_account:sms_token``. Accepted: 2xx with
  the message's ``sid``; an error answer's JSON ``code`` and ``message`` go into the error.
* ``smsru`` — SMS.ru: ``POST /sms/send`` with ``api_id`` (``sms_token``), ``to`` (digits),
  ``msg``, ``json=1`` and ``from``. Accepted: ``"status": "OK"`` for the request and for the
  number (its ``sms_id``); else its ``status_code`` and ``status_text``.
* ``smsc`` — SMSC.ru: ``POST /sys/send.php`` with ``login`` and ``psw`` (or ``apikey`` when
  ``sms_account`` is empty), ``phones``, ``mes``, ``sender``, ``fmt=3`` (JSON), ``charset=utf-8``.
  Accepted: an ``id`` and no ``error``; else its ``error_code`` and ``error``.

Credentials travel in the request body or a header, never in the URL, and never appear in an
error or the log; a redirect is not followed (it is an error), so they go nowhere else. Every failure is a :class:`~calltracking.jobs.transport.DeliveryError`: the
outbox retries it and, after the last attempt, keeps it in the dead letters.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import urllib.parse

from calltracking.jobs.transport import DeliveryError, exchange
from calltracking.sms.numbers import masked

log = logging.getLogger(__name__)

BASE_URLS = {"twilio": "https://api.twilio.com", "smsru": "https://sms.ru", "smsc": "https://smsc.ru"}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json; charset=utf-8"
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


def _fill(template: str, values: dict, escape) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced by its escaped value; other
    braces (a JSON body's) stay as they are."""
    return re.sub(r"\{(to|to_digits|text|from)\}", lambda m: escape(values[m.group(1)]), template)


def _form(fields: dict) -> str:
    return urllib.parse.urlencode({k: v for k, v in fields.items() if v != ""})


def _generic(n, to: str, text: str) -> dict:
    if not n.sms_url.startswith(("http://", "https://")):
        raise DeliveryError("[notify] sms_url must be the gateway's http(s) URL")
    values = {"to": to, "to_digits": to.lstrip("+"), "text": text, "from": n.sms_from}
    url = _fill(n.sms_url, values, lambda v: urllib.parse.quote(v, safe=""))
    headers = {}
    if n.sms_auth_header:
        name, _, value = n.sms_auth_header.partition(":")
        headers[name.strip()] = value.strip()
    if n.sms_method == "GET":
        return {"method": "GET", "url": url, "headers": headers, "body": None}
    if n.sms_content_type == "json":
        body = _fill(n.sms_body or '{"to": "{to}", "text": "{text}", "from": "{from}"}', values,
                     lambda v: json.dumps(v, ensure_ascii=False)[1:-1])
        headers["Content-Type"] = JSON
    else:
        body = _fill(n.sms_body or "to={to}&text={text}&from={from}", values,
                     lambda v: urllib.parse.quote_plus(v))
        headers["Content-Type"] = FORM
    return {"method": "POST", "url": url, "headers": headers, "body": body}


def _twilio(n, to: str, text: str) -> dict:
    if not n.sms_account or not n.sms_token:
        raise DeliveryError("twilio needs [notify] sms_account (Account SID) and sms_token (Auth Token)")
    base = (n.sms_url or BASE_URLS["twilio"]).rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{urllib.parse.quote(n.sms_account, safe='')}/Messages.json"
    sender = "MessagingServiceSid" if MESSAGING_SERVICE_SID.match(n.sms_from) else "From"
    auth = base64.b64encode(f"{n.sms_account}:{n.sms_token}".encode()).decode()
    return {"method": "POST", "url": url, "body": _form({"To": to, sender: n.sms_from, "Body": text}),
            "headers": {"Content-Type": FORM, "Authorization": f"Basic {auth}", "Accept": "application/json"}}


def _smsru(n, to: str, text: str) -> dict:
    if not n.sms_token:
        raise DeliveryError("smsru needs [notify] sms_token (the api_id)")
    base = (n.sms_url or BASE_URLS["smsru"]).rstrip("/")
    return {"method": "POST", "url": f"{base}/sms/send", "headers": {"Content-Type": FORM},
            "body": _form({"api_id": n.sms_token, "to": to.lstrip("+"), "msg": text, "json": "1",
                           "from": n.sms_from})}


def _smsc(n, to: str, text: str) -> dict:
    if not n.sms_token:
        raise DeliveryError("smsc needs [notify] sms_account and sms_token (login and password), "
                            "or sms_token alone (an API key)")
    base = (n.sms_url or BASE_URLS["smsc"]).rstrip("/")
    auth = {"login": n.sms_account, "psw": n.sms_token} if n.sms_account else {"apikey": n.sms_token}
    return {"method": "POST", "url": f"{base}/sys/send.php", "headers": {"Content-Type": FORM},
            "body": _form({**auth, "phones": to, "mes": text, "sender": n.sms_from, "fmt": "3",
                           "charset": "utf-8"})}


BUILDERS = {"http": _generic, "twilio": _twilio, "smsru": _smsru, "smsc": _smsc}


def build_request(notify_config, to: str, text: str) -> dict:
    """The HTTP request (``method``, ``url``, ``headers``, ``body``) of the configured gateway."""
    builder = BUILDERS.get(notify_config.sms_provider)
    if builder is None:
        raise DeliveryError("[notify] sms_provider is not set: SMS rules cannot send")
    return builder(notify_config, to, text)


def _json(raw: bytes, provider: str) -> dict:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DeliveryError(f"{provider}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise DeliveryError(f"{provider}: unexpected answer")
    return data


def _short(v) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(v))[:200]


def accepted(notify_config, to: str, status: int, raw: bytes) -> str:
    """The gateway's id of the accepted message (``""`` when it gives none), or DeliveryError
    with the gateway's own error code and text."""
    provider = notify_config.sms_provider
    if provider == "http":
        if notify_config.sms_ok_regex and not re.search(notify_config.sms_ok_regex,
                                                         raw.decode("utf-8", "replace")):
            raise DeliveryError(f"HTTP {status}, but the answer does not match [notify] sms_ok_regex")
        return ""
    data = _json(raw, provider)
    if provider == "twilio":
        if not data.get("sid"):
            raise DeliveryError("twilio: no message sid in the answer")
        return _short(data["sid"])
    if provider == "smsru":
        one = (data.get("sms") or {}).get(to.lstrip("+")) or {}
        if data.get("status") != "OK":
            raise DeliveryError(f"smsru {data.get('status_code')}: {_short(data.get('status_text', ''))}")
        if one.get("status") != "OK":
            raise DeliveryError(f"smsru {one.get('status_code')}: {_short(one.get('status_text', 'refused'))}")
        return _short(one.get("sms_id", ""))
    if "error" in data or "error_code" in data or "id" not in data:
        raise DeliveryError(f"smsc {data.get('error_code')}: {_short(data.get('error', 'no message id'))}")
    return _short(data["id"])


def _error_detail(provider: str, e: DeliveryError) -> str:
    """An error answer's own code and text, for the providers whose errors are documented."""
    try:
        data = json.loads(e.body.decode("utf-8")) if e.body else {}
    except (UnicodeDecodeError, ValueError):
        return ""
    if provider == "twilio" and isinstance(data, dict) and data.get("code"):
        return f": twilio {data.get('code')}: {_short(data.get('message', ''))}"
    return ""


def send(config, message: dict, allowed) -> int:
    """Send ``{"to": E.164, "text": …}`` through ``[notify] sms_provider``; the HTTP status of
    an accepted message, else DeliveryError (the outbox retries it)."""
    n = config.notify
    to, text = message["to"], message["text"]
    req = build_request(n, to, text)
    try:
        status, raw = exchange(req, allowed, error_body=True, redirects=False)   # credentials stay put
    except DeliveryError as e:
        detail = _error_detail(n.sms_provider, e)
        if detail:
            raise DeliveryError(str(e) + detail, e.http_status) from None
        raise
    try:
        message_id = accepted(n, to, status, raw)
    except DeliveryError as e:
        e.http_status = status
        raise
    log.info("SMS to %s accepted by %s%s", masked(to), n.sms_provider, f" as {message_id}" if message_id else "")
    return status
