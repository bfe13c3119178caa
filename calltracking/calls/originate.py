"""Click-to-call: one short AMI session that sends ``Originate`` (opt-in, ``[ami] originate``).

The operator's phone (their interface, e.g. ``PJSIP/101``) rings first; when they pick up,
Asterisk dials the caller's number in the dialplan context ``calltracking-callback``
(extension = the number), so the admin's outbound rules apply there. The AMI user needs the
``originate`` write privilege, which is why the feature is off by default.
"""
from __future__ import annotations

import socket
import uuid

CONTEXT = "calltracking-callback"


class OriginateError(RuntimeError):
    """AMI refused or could not be reached (message is user-facing)."""


def _clean(v: str) -> str:
    # no header injection through CR/LF
    return str(v).replace("\r", " ").replace("\n", " ")


def _send(sock, fields: dict) -> None:
    data = "".join(f"{k}: {_clean(v)}\r\n" for k, v in fields.items()) + "\r\n"
    sock.sendall(data.encode("utf-8"))


def _read_response(fh, action_id: str) -> dict:
    """Read messages until the ``Response`` for ``action_id``; events in between are skipped."""
    while True:
        msg = {}
        while True:
            line = fh.readline()
            if not line:
                raise OriginateError("AMI closed the connection")
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                break
            k, _, v = line.partition(":")
            msg[k.strip().lower()] = v.strip()
        if "response" in msg and msg.get("actionid", action_id) == action_id:
            return msg


def originate(host: str, port: int, username: str, secret: str, channel: str, number: str,
              caller_id: str = "", context: str = CONTEXT, variables: dict | None = None,
              timeout: float = 5.0, ring_timeout_ms: int = 30000) -> str:
    """Send one Originate (Async; ``channel`` rings at most ``ring_timeout_ms``); returns the
    ActionID. Raises :class:`OriginateError`."""
    if not channel or not number:
        raise OriginateError("click-to-call needs the operator's interface and a number")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise OriginateError(f"cannot connect to AMI at {host}:{port}: {e.strerror or e}") from None
    try:
        sock.settimeout(timeout)
        fh = sock.makefile("rb")
        banner = fh.readline()
        if not banner.startswith(b"Asterisk Call Manager"):
            raise OriginateError("the AMI port did not answer with an Asterisk banner")
        login_id = uuid.uuid4().hex
        _send(sock, {"Action": "Login", "Username": username, "Secret": secret, "Events": "off",
                     "ActionID": login_id})
        r = _read_response(fh, login_id)
        if r.get("response", "").lower() != "success":
            raise OriginateError(f"AMI login failed: {r.get('message', 'refused')}")
        action_id = uuid.uuid4().hex
        fields = {"Action": "Originate", "Channel": channel, "Context": context, "Exten": number,
                  "Priority": "1", "Async": "true", "Timeout": str(int(ring_timeout_ms)), "ActionID": action_id}
        if caller_id:
            fields["CallerID"] = caller_id
        if variables:
            fields["Variable"] = ",".join(f"{k}={v}" for k, v in variables.items())
        _send(sock, fields)
        r = _read_response(fh, action_id)
        if r.get("response", "").lower() != "success":
            raise OriginateError(f"AMI refused Originate: {r.get('message', 'error')} "
                                 "(does the AMI user have the 'originate' privilege?)")
        _send(sock, {"Action": "Logoff", "ActionID": uuid.uuid4().hex})
        return action_id
    except socket.timeout:
        raise OriginateError("AMI did not answer in time") from None
    except OSError as e:
        raise OriginateError(f"AMI connection failed: {e}") from None
    finally:
        sock.close()
