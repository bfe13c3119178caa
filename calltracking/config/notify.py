"""The ``[notify]`` section: e-mail (SMTP), the generic webhook, the reach of outgoing requests,
and the ``sms_*`` keys of :class:`calltracking.sms.settings.SmsSettings` (its base class)."""
from __future__ import annotations

from dataclasses import dataclass

from calltracking import sms
from calltracking.config.options import integer, opt, text, yes_no


@dataclass(frozen=True)
class NotifyConfig(sms.SmsSettings):   # the sms_* keys: calltracking/sms/settings.py
    smtp_host: str = opt("", text)
    smtp_port: int = opt(25, integer(1, 65535))
    smtp_user: str = opt("", text)
    smtp_password: str = opt("", text, secret=True)
    smtp_from: str = opt("", text)
    smtp_starttls: bool = opt(False, yes_no)
    webhook_url: str = opt("", text)
    webhook_template: str = opt("", text)
    allow_private_targets: bool = opt(False, yes_no, "Let webhooks (CRM, SMS/chat, a GA4 endpoint URL) reach "
                                      "loopback, private, link-local and other non-public addresses")
