"""Text messages (SMS): the ``sms`` channel of notification rules.

* ``settings``: the ``[notify] sms_*`` keys (provider, credentials, sender, parts);
* ``numbers``: the recipients of a rule, phone numbers in E.164 (``phonenumbers``);
* ``encoding``: GSM-7 or UCS-2, the length of a message in parts, and trimming to a number of
  parts;
* ``providers``: the request of each gateway — a generic HTTP gateway, Twilio, SMS.ru,
  SMSC.ru — and how its answer says "accepted" or not.

What a message says and when it is queued: :mod:`calltracking.jobs.notify` and
:mod:`calltracking.jobs.rules`; it leaves through the outbox (:mod:`calltracking.jobs.outbox`)
with its retries and dead letters, one delivery per recipient.
"""
from calltracking.sms.settings import SmsSettings  # noqa: F401  (the base of [notify]: calltracking.config)
