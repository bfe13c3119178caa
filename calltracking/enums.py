"""Every closed set of strings the database stores, one ``StrEnum`` per column.

A member *is* its stored string (``CallStatus.MISSED == "missed"``), so members go straight
into queries, model defaults and JSON. Where a column has a CHECK constraint, the model builds
it with :func:`check_in` from the enum, and ``tests/test_models.py`` proves the migrations'
constraints list exactly the enum's values. Adding a value therefore means: a member here, and
a migration that rewrites the constraint.
"""
from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    """Where a call is (``calls.status``, ``outbound_calls.status``)."""

    IN_PROGRESS = "in_progress"
    """Not yet hung up: some channel of the call is still up."""
    ANSWERED = "answered"
    """Hung up after someone answered (an operator, or the outside party of an outbound call)."""
    MISSED = "missed"
    """Hung up with nobody having answered; ``missed_reason`` says why."""


class MissedReason(StrEnum):
    """Why an inbound call was missed (``calls.missed_reason``; NULL unless status is missed)."""

    ABANDONED = "abandoned"
    """The caller hung up while waiting (in the queue, or while an operator's phone rang)."""
    TIMEOUT = "timeout"
    """Nobody answered in time: Queue()'s timeout, or a Dial() that ended NOANSWER."""
    NO_OPERATORS = "no_operators"
    """The queue had no operator who could take the call (empty or all unavailable)."""
    BUSY = "busy"
    """The dialled operator was busy (Dial() ended BUSY)."""
    FAILED = "failed"
    """The call could not be put through (Dial() ended CHANUNAVAIL or CONGESTION), or ended
    outside a queue without the caller hanging up."""


class AttributionKind(StrEnum):
    """How the call's source was found (``calls.attribution``)."""

    STATIC = "static"
    """The dialled number is mapped to one source/campaign."""
    DYNAMIC = "dynamic"
    """The dialled number is a pool number a website visitor held (DNI): the visit's source."""
    PROMO = "promo"
    """The caller typed a promo code shown to a visitor: that visit's source."""
    NONE = "none"
    """Not attributed: an unknown number, or a pool number nobody held."""
    CALLBACK = "callback"
    """A call the PBX placed for a website callback request (:mod:`calltracking.callbacks`): the
    request's source and campaign, from the visit that asked."""


class LegOutcome(StrEnum):
    """How one operator leg of a call ended (``call_legs.outcome``)."""

    RINGING = "ringing"
    """Still ringing (the call is in progress)."""
    ANSWERED = "answered"
    """The operator answered."""
    NO_ANSWER = "no_answer"
    """Rang, and stopped ringing unanswered while the call went on (the queue tried someone else)."""
    BUSY = "busy"
    """The operator's phone was busy."""
    FAILED = "failed"
    """The phone could not be reached (unavailable, congestion, refused)."""
    CANCELLED = "cancelled"
    """Stopped ringing because the call ended (caller hung up) or someone else answered."""


class LegKind(StrEnum):
    """How an operator came to be rung within a call (``call_legs.kind``)."""

    QUEUE = "queue"
    """Rung by Queue()."""
    DIAL = "dial"
    """Rung by a Dial() outside a queue."""
    TRANSFER = "transfer"
    """Reached by a transfer after the call was answered."""
    PICKUP = "pickup"
    """Took the call with call pickup while it was ringing elsewhere."""


class NumberKind(StrEnum):
    """What a tracking number is for (``tracking_numbers.kind``)."""

    STATIC = "static"
    """Mapped to one source/campaign for good (``pool_id`` is NULL)."""
    POOL = "pool"
    """A member of a DNI pool, shown to one visitor at a time (``pool_id`` set)."""


class PromoMode(StrEnum):
    """When the website snippet of a pool shows a promo code (``number_pools.promo_mode``)."""

    OFF = "off"
    """Never."""
    EXHAUSTED = "exhausted"
    """Only when the pool had no free number for the visitor."""
    ALWAYS = "always"
    """To every visitor, with or without a number."""


class SourceChannel(StrEnum):
    """The marketing channel a source belongs to (``sources.channel``)."""

    SEARCH = "search"
    """Organic search."""
    ADS = "ads"
    """Paid advertising (search or display)."""
    SOCIAL = "social"
    """Social networks."""
    EMAIL = "email"
    """E-mail campaigns."""
    OFFLINE = "offline"
    """Print, outdoor, radio: anything with a static number and no website visit."""
    REFERRAL = "referral"
    """Links from other websites."""
    DIRECT = "direct"
    """Typed-in visits, bookmarks."""
    OTHER = "other"
    """Anything else."""


class Device(StrEnum):
    """The visitor's device as read from the User-Agent (``visitor_sessions.device``; "" = none sent)."""

    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    BOT = "bot"
    """A crawler or an empty User-Agent: never given a pool number."""
    OTHER = "other"
    """A User-Agent we cannot place (TVs, consoles, unknown systems)."""


class Role(StrEnum):
    """What a web UI user may do (``users.role``)."""

    ADMIN = "admin"
    """Everything: settings, users, integrations, reports, calls."""
    SUPERVISOR = "supervisor"
    """All calls and the reports; no settings."""
    OPERATOR = "operator"
    """Only the calls they took or were rung for; no reports, no settings."""


class NotificationChannel(StrEnum):
    """Where a notification rule or a delivery goes (``notification_rules.channel``, ``deliveries.channel``)."""

    EMAIL = "email"
    """Mail through ``[smtp]``."""
    WEBHOOK = "webhook"
    """A signed JSON POST to any URL."""
    CRM = "crm"
    """A signed JSON POST in the CRM payload shape."""
    GA4 = "ga4"
    """A Google Analytics 4 Measurement Protocol event."""
    SMS = "sms"
    """A text message through the ``[notify] sms_provider`` gateway (:mod:`calltracking.sms`)."""


class NotificationEvent(StrEnum):
    """What a notification rule fires on (``notification_rules.event``)."""

    MISSED_CALL = "missed_call"
    """A call was missed."""
    CALL_FINISHED = "call_finished"
    """Any inbound call ended."""
    DIGEST_DAILY = "digest_daily"
    """Yesterday's summary, mailed once a day."""
    DIGEST_WEEKLY = "digest_weekly"
    """Last week's summary, mailed on Mondays."""
    CALLBACK_UNREACHED = "callback_unreached"
    """A website callback request ended unreached (every attempt made, the visitor never answered)."""


class DeliveryEvent(StrEnum):
    """What a delivery carries (``deliveries.event``): a rule's event, or a test sent by hand."""

    MISSED_CALL = "missed_call"
    CALL_FINISHED = "call_finished"
    DIGEST_DAILY = "digest_daily"
    DIGEST_WEEKLY = "digest_weekly"
    CALLBACK_UNREACHED = "callback_unreached"
    TEST = "test"
    """Sent from the integrations page to try a rule (a made-up call)."""


class DeliveryStatus(StrEnum):
    """Where a delivery is in the outbox (``deliveries.status``)."""

    PENDING = "pending"
    """Waiting for its (next) attempt at ``next_attempt_at``."""
    SENT = "sent"
    """Accepted by the receiver."""
    DEAD = "dead"
    """Gave up after the last retry: the dead-letter list, re-sent only by hand."""


class RecordingStatus(StrEnum):
    """What became of a call's recording (``recording_info.status``)."""

    OK = "ok"
    """Converted and playable (``file``)."""
    MISSING = "missing"
    """The call was recorded but no file was found."""
    ERROR = "error"
    """Found but could not be converted or analysed (``error``)."""
    PURGED = "purged"
    """Deleted by the retention policy."""


class TranscriptStatus(StrEnum):
    """Where a call's transcript is (``transcripts.status``)."""

    OK = "ok"
    """Transcribed: its phrases are in ``transcript_phrases``."""
    ERROR = "error"
    """The last attempt failed (``error`` says why); tried again, up to ``[transcripts] max_attempts``."""
    FAILED = "failed"
    """Failed ``max_attempts`` times: not tried again until re-queued."""


class TranscriptSide(StrEnum):
    """Who said a phrase (``transcript_phrases.side``, ``keyword_mentions.side``)."""

    CALLER = "caller"
    """The caller: the left channel of a stereo recording, or the ``-in`` file of a pair."""
    OPERATOR = "operator"
    """The operator: the right channel, or the ``-out`` file."""
    MIXED = "mixed"
    """A mono recording: both voices in one channel."""


class ReportDimension(StrEnum):
    """What a rollup row is split by (``report_daily.dim``).

    Monthly rows carry the same value with :data:`MONTH_SUFFIX` (``"source@m"``), yearly
    rows with ``"@y"`` (``"source@y"``, ``calltracking.reports.rollup.YEAR_SUFFIX``).
    """

    ALL = "all"
    """One row per day: every call."""
    SOURCE = "source"
    CAMPAIGN = "campaign"
    KEYWORD = "keyword"
    OPERATOR = "operator"
    """The operator who answered."""
    DEVICE = "device"
    OS = "os"
    BROWSER = "browser"
    TTC = "ttc"
    """Time to call: the bucket of seconds between the visit and the call."""


MONTH_SUFFIX = "@m"


class WhisperVoice(StrEnum):
    """The ``espeak-ng`` voice a project's whisper is spoken with (``whisper_projects.voice``)."""

    EN = "en"
    """English."""
    RU = "ru"
    """Russian."""


class CallbackStatus(StrEnum):
    """Where a website callback request is (``callback_requests.status``)."""

    PENDING = "pending"
    """Waiting for its next attempt at ``next_attempt_at`` (now, the next opening, or a retry)."""
    DIALING = "dialing"
    """An attempt is in progress: Originate sent, the call not yet over."""
    REACHED = "reached"
    """An operator and the visitor talked (the attempt's call is ``call_id``)."""
    UNREACHED = "unreached"
    """Every attempt made and the visitor never answered: shown in the missed-calls worklist."""


class CallbackResult(StrEnum):
    """How one attempt of a callback request ended (``callback_attempts.result``; NULL while
    it runs)."""

    REACHED = "reached"
    """The operator and the visitor were connected."""
    NO_ANSWER = "no_answer"
    """An operator answered, the visitor did not (busy, no answer, unreachable number)."""
    NO_OPERATOR = "no_operator"
    """No operator of the queue answered: the visitor was never dialled."""
    FAILED = "failed"
    """The PBX refused the Originate or could not be reached."""
    LOST = "lost"
    """No call record came for the attempt in time (the service or the PBX restarted mid-call)."""


def check_in(column: str, values: type[StrEnum], *, nullable: bool = False) -> str:
    """The SQL of a CHECK constraint allowing exactly ``values`` in ``column``, in
    declaration order: ``status IN ('in_progress', 'answered', 'missed')``."""
    listed = ", ".join(f"'{v.value}'" for v in values)
    sql = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {sql}" if nullable else sql
