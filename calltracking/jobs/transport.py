"""How a delivery leaves: HTTP(S) to public addresses only, e-mail over SMTP, the signature.

HTTP targets: every connection — the first and after each redirect — goes only to public
addresses (:func:`public_address`) unless ``[notify] allow_private_targets``: the host is
resolved, every address checked, and the socket connected to a checked address (a DNS answer
that changes in between cannot slip a private address in). Environment proxy variables are
not used. A failed answer is recorded as its status line only, never its body (it could carry
what an internal service answered). Only ``http:`` and ``https:`` URLs are followed.

Signature (:func:`sign`): a request of a rule with a ``secret`` carries
``X-Calltracking-Signature: t=<unix time>,v1=<hex>``, the HMAC-SHA256 keyed with the secret of
``"<t>."`` followed by the raw body, computed at each attempt (:func:`calltracking.jobs.outbox.attempt`).

Every failure to send is a :class:`DeliveryError` (its ``http_status`` when there was an answer).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import http
import ipaddress
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

from calltracking import __version__

HTTP_TIMEOUT = 10.0        # seconds, per connection and per SMTP conversation
SIGNATURE_HEADER = "X-Calltracking-Signature"


class DeliveryError(Exception):
    """A message could not be sent; ``http_status`` is the answer's status, if any."""

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.body = b""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``t=<unix time>,v1=<hex>``: HMAC-SHA256, keyed with ``secret``, of ``"<t>."`` followed
    by the raw body. The receiver recomputes it and refuses an old ``t`` (a replay):
    docs/recordings-notifications-integrations.md shows the check (a test runs it)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# --------------------------------------------------------- which addresses
class RefusedTarget(OSError):
    """The target resolves to an address webhooks may not reach."""


def public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address of the public internet. False for loopback, private (10/8,
    172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 — cloud metadata —, fe80::/10),
    shared (100.64/10), multicast, reserved and unspecified (0.0.0.0, ::) addresses; an
    IPv4-mapped IPv6 address is judged as its IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def allow_any(_ip) -> bool:
    """Every address (``[notify] allow_private_targets = yes``)."""
    return True


def target_policy(config):
    """Which addresses ``config`` lets webhooks reach (``[notify] allow_private_targets``)."""
    return allow_any if config.notify.allow_private_targets else public_address


def check_host(host: str, port: int, allowed=public_address) -> list:
    """``getaddrinfo`` of ``host``; RefusedTarget unless ``allowed`` accepts every address."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not allowed(ip):
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise RefusedTarget(f"{shown} is not a public address; webhooks reach private, loopback "
                                "and link-local addresses only with [notify] allow_private_targets = yes")
    return infos


# ------------------------------------------------------------------ HTTP out
def _guarded_create_connection(allowed):
    """A ``socket.create_connection`` that connects only to addresses ``allowed`` accepts."""

    def create(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, *args, **kwargs):
        host, port = address
        error = None
        for family, type_, proto, _name, sockaddr in check_host(host, port, allowed):
            sock = socket.socket(family, type_, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as e:
                error = e
                sock.close()
        raise error or OSError(f"{host}: no address")

    return create


def _guarded_connection(http_class, allowed, host, **kwargs):
    conn = http_class(host, **kwargs)
    conn._create_connection = _guarded_create_connection(allowed)
    return conn


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(functools.partial(_guarded_connection, http_class, self.allowed), req, **kwargs)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(functools.partial(_guarded_connection, http_class, self.allowed), req, **kwargs)


def _opener(allowed, redirects: bool = True) -> urllib.request.OpenerDirector:
    """http and https only (a redirect elsewhere, e.g. ``ftp:``, fails), no proxies, every
    connection through the address check; without ``redirects`` a 3xx answer is an error."""
    opener = urllib.request.OpenerDirector()
    for h in (_GuardedHTTPHandler(allowed), _GuardedHTTPSHandler(allowed),
              urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor(),
              urllib.request.UnknownHandler()) + ((urllib.request.HTTPRedirectHandler(),) if redirects else ()):
        opener.add_handler(h)
    return opener


def _status_line(code: int) -> str:
    try:
        return f"HTTP {code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def send_http(req: dict, allowed=public_address) -> int:
    """Send ``{"method", "url", "headers", "body"}``; 2xx or DeliveryError. Only addresses
    ``allowed`` accepts are connected to, redirects included; an error answer's body is not
    read into the error (it could carry what an internal service answered)."""
    return exchange(req, allowed)[0]


def exchange(req: dict, allowed=public_address, error_body: bool = False,
             redirects: bool = True) -> tuple[int, bytes]:
    """:func:`send_http` returning (status, the first 64 KiB of the answer). With
    ``error_body`` the DeliveryError of an error answer keeps its body in ``.body`` for the
    caller to parse (an SMS gateway's error code), never in its message. Without
    ``redirects`` a 3xx answer is a DeliveryError (urllib would carry an ``Authorization``
    header to wherever the redirect points)."""
    url = req["url"]
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"not an http(s) URL: {url!r}")
    body = req.get("body")
    data = body.encode("utf-8") if isinstance(body, str) else None
    r = urllib.request.Request(url, data=data, method=req.get("method") or ("POST" if data else "GET"))
    r.add_header("User-Agent", f"calltracking/{__version__}")
    for k, v in (req.get("headers") or {}).items():
        r.add_header(k, v)
    try:
        with _opener(allowed, redirects).open(r, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, resp.read(65536)
    except urllib.error.HTTPError as e:
        err = DeliveryError(_status_line(e.code), e.code)
        if error_body:
            try:
                err.body = e.read(65536)
            except OSError:
                pass
        e.close()
        raise err from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, RefusedTarget):
            raise DeliveryError(f"refused: {reason}") from None
        netloc = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]     # never a user:password@
        raise DeliveryError(f"cannot reach {netloc}: {reason}") from None


# ---------------------------------------------------------------------- mail
def send_email(config, mail: dict) -> None:
    """Send ``{"to": [...], "subject", "text", "html"}`` with ``[notify] smtp_*``."""
    n = config.notify
    if not n.smtp_host:
        raise DeliveryError("[notify] smtp_host is not set")
    msg = EmailMessage()
    msg["From"] = n.smtp_from or f"calltracking@{n.smtp_host}"
    msg["To"] = ", ".join(mail["to"])
    msg["Subject"] = " ".join(mail["subject"].split())  # no header injection
    msg.set_content(mail["text"])
    if mail.get("html"):
        msg.add_alternative(mail["html"], subtype="html")
    try:
        with smtplib.SMTP(n.smtp_host, n.smtp_port, timeout=HTTP_TIMEOUT) as smtp:
            if n.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if n.smtp_user:
                smtp.login(n.smtp_user, n.smtp_password)
            smtp.send_message(msg)
    except smtplib.SMTPResponseException as e:
        raise DeliveryError(f"SMTP {e.smtp_code}: {e.smtp_error!r}") from None
    except (smtplib.SMTPException, OSError) as e:
        raise DeliveryError(f"SMTP {n.smtp_host}:{n.smtp_port}: {type(e).__name__}: {e}") from None
