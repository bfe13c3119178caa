"""The handler of every AMI event type we read (:data:`EVENTTYPE_MAP`), and the ones we skip.

Each handler gets the interpreter (the state), the event (a dict of AMI headers) and its time
(epoch float), and returns the Linkedid of the call it changed (the event is then stored with
that call), or None when the event changed nothing worth keeping. Handlers never do I/O. They
live by concept: :mod:`.channels` (a call's channels, caller, variables, end), :mod:`.queues`,
:mod:`.dials`, :mod:`.bridges` (bridges, transfers, Local optimisation) and :mod:`.crosscheck`
(Asterisk's own figures); the events a reconnect adds are :mod:`.gaps`'.
"""
from __future__ import annotations

from calltracking.interpret.bridges import (
    on_attended_transfer, on_blind_transfer, on_bridge_enter, on_bridge_leave, on_bridge_merge,
    on_local_optimization,
)
from calltracking.interpret.channels import (
    on_callerid, on_channel_gone, on_core_show_channel, on_hangup, on_hangup_request, on_newchannel, on_varset,
)
from calltracking.interpret.crosscheck import on_agent_complete, on_cdr
from calltracking.interpret.dials import on_dial_begin, on_dial_end
from calltracking.interpret.queues import (
    on_agent_called, on_agent_connect, on_agent_ring_no_answer, on_queue_abandon, on_queue_entry, on_queue_join,
    on_queue_leave, on_queue_member,
)

#: Every event header the handlers read (a test checks the code against it): a stored event
#: keeps these, so replaying it (``ami rebuild``, a restart) decides exactly as the live run.
#: ``CTQueueEmpty`` is ours (written by :func:`.queues.on_queue_join`).
HEADERS = frozenset("""Event Timestamp Uniqueid Linkedid Channel Context Exten CallerIDNum CallerIDName
DestUniqueid DestChannel DestCallerIDNum Variable Value Queue MemberName Interface Location Name Status
Paused DialStatus DialString BridgeUniqueid SwapUniqueid ToBridgeUniqueid FromBridgeUniqueid
LocalOneUniqueid LocalTwoUniqueid SourceUniqueid Result TransfereeLinkedid TransfererLinkedid
OrigTransfererLinkedid TransferTargetUniqueid TransferTargetChannel TalkTime HoldTime RingTime Reason
Wait Duration BridgeId Extension UniqueID BillableSeconds Disposition CTQueueEmpty""".split())

EVENTTYPE_MAP = {
    "Newchannel": on_newchannel,
    "Newstate": on_callerid,
    "NewCallerid": on_callerid,
    "HangupRequest": on_hangup_request,
    "Hangup": on_hangup,
    "VarSet": on_varset,
    "QueueCallerJoin": on_queue_join,
    "QueueCallerLeave": on_queue_leave,
    "QueueCallerAbandon": on_queue_abandon,
    "AgentCalled": on_agent_called,
    "AgentRingNoAnswer": on_agent_ring_no_answer,
    "AgentConnect": on_agent_connect,
    "AgentComplete": on_agent_complete,
    "DialBegin": on_dial_begin,
    "DialEnd": on_dial_end,
    "BridgeEnter": on_bridge_enter,
    "BridgeLeave": on_bridge_leave,
    "BridgeMerge": on_bridge_merge,
    "LocalOptimizationBegin": on_local_optimization,
    "BlindTransfer": on_blind_transfer,
    "AttendedTransfer": on_attended_transfer,
    "Cdr": on_cdr,
    "QueueMember": on_queue_member,
    "QueueMemberAdded": on_queue_member,
    "QueueMemberRemoved": on_queue_member,
    "QueueMemberStatus": on_queue_member,
    "QueueMemberPause": on_queue_member,
    "QueueEntry": on_queue_entry,
    "CoreShowChannel": on_core_show_channel,
    "CTChannelGone": on_channel_gone,
}

#: Events we know and deliberately skip (not counted as unknown).
IGNORED = frozenset({
    "CEL", "Newexten", "DeviceStateChange", "NewConnectedLine", "LocalBridge", "DialState",
    "SoftHangupRequest", "FullyBooted", "SuccessfulAuth", "OriginateResponse", "AGIExecStart",
    "AGIExecEnd", "BridgeCreate", "BridgeDestroy", "BridgeInfoChannel", "BridgeInfoComplete",
    "LocalOptimizationEnd", "MusicOnHoldStart", "MusicOnHoldStop", "Hold", "Unhold",
    "QueueParams", "QueueStatusComplete", "CoreShowChannelsComplete", "NewAccountCode",
    "ChallengeSent", "RTCPSent", "RTCPReceived", "PeerStatus", "ContactStatus", "Registry",
    "DTMFBegin", "DTMFEnd", "MixMonitorStart", "MixMonitorStop", "UserEvent", "Reload",
    "ChanSpyStart", "ChanSpyStop", "HangupHandlerPush", "HangupHandlerRun", "HangupHandlerPop",
    "InvalidAccountID", "InvalidPassword", "ChallengeResponseFailed", "SessionTimeout",
    "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", "DeviceStateListComplete", "Status",
    "StatusComplete", "QueueSummary", "QueueSummaryComplete", "AgentLogin", "AgentLogoff",
    "AgentDump", "QueueCallerStatus", "QueueMemberPenalty", "QueueMemberRinginuse",
    "VoicemailPasswordChange", "MessageWaiting", "Shutdown", "LoadAverageLimit", "MemoryLimit",
})
