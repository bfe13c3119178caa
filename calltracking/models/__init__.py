"""The domain model (SQLAlchemy 2.x), one module per feature.

:mod:`~calltracking.models.base` (``Base``, UTC datetimes, money), :mod:`~.catalogue` (projects,
sources, numbers, pools, routing, promo codes, tags), :mod:`~.dni` (visits and pool
reservations), :mod:`~.calls` (calls, legs, operators, outbound calls), :mod:`~.listener` (the
AMI listener's tables), :mod:`~.reports` (ad spend, rollups), :mod:`~.jobs` (scheduler, outbox,
recordings), :mod:`~.users` (users, audit log, saved journal filters), :mod:`~.whisper` (the operator's whisper), :mod:`~.callbacks` (website callback requests), :mod:`~.qualify` (target rules), :mod:`~.transcripts` (transcripts, keyword lists and mentions). The closed sets of strings the columns hold are
in :mod:`calltracking.enums`.

Every model is importable from here (``from calltracking.models import Call``); importing this
package registers every table in ``Base.metadata``, which the migrations are compared with.
"""
from calltracking.models.base import (
    NAMING, Base, Money, MoneySum, Seconds, SecondsSum, UTCDateTime, utcnow,
)
from calltracking.models.catalogue import (
    Campaign, CatalogueVersion, NumberPool, Project, PromoCode, RoutingRule, Source, SourceAlias, Tag,
    TrackingNumber,
)
from calltracking.models.dni import DniSnippetPing, PoolReservation, VisitorSession
from calltracking.models.calls import Call, CallLeg, Operator, OutboundCall, call_tags
from calltracking.models.listener import AmiCall, AmiEvent, AmiListenerState
from calltracking.models.reports import AdSpend, AdSpendImport, ReportDaily, ReportHourly, ReportRollupState
from calltracking.models.jobs import (
    Delivery, JobStatus, NotificationRule, RecordingInfo, RecordingPolicy, SchedulerLease,
)
from calltracking.models.users import AuditLog, SavedFilter, User
from calltracking.models.whisper import WhisperProject, WhisperSource
from calltracking.models.transcripts import KeywordList, KeywordMention, Transcript, TranscriptPhrase
from calltracking.models.callbacks import CallbackAttempt, CallbackRequest, CallbackSettings
from calltracking.models.qualify import TargetRule, target_rule_tags

__all__ = [
    "NAMING", "Base", "Money", "MoneySum", "Seconds", "SecondsSum", "UTCDateTime", "utcnow",
    "Campaign", "CatalogueVersion", "NumberPool", "Project", "PromoCode", "RoutingRule", "Source",
    "SourceAlias", "Tag", "TrackingNumber",
    "DniSnippetPing", "PoolReservation", "VisitorSession",
    "Call", "CallLeg", "Operator", "OutboundCall", "call_tags",
    "AmiCall", "AmiEvent", "AmiListenerState",
    "AdSpend", "AdSpendImport", "ReportDaily", "ReportHourly", "ReportRollupState",
    "Delivery", "JobStatus", "NotificationRule", "RecordingInfo", "RecordingPolicy", "SchedulerLease",
    "AuditLog", "SavedFilter", "User",
    "WhisperProject", "WhisperSource",
    "KeywordList", "KeywordMention", "Transcript", "TranscriptPhrase",
    "CallbackAttempt", "CallbackRequest", "CallbackSettings",
    "TargetRule", "target_rule_tags",
]
