"""The sections of the Asterisk side: ``[ami]``, ``[agi]``, ``[asterisk]`` and ``[recordings]``."""
from __future__ import annotations

from dataclasses import dataclass

from calltracking.config.options import (choice, contexts, hostport, integer, networks, number, opt, text,
                                         yes_no)


@dataclass(frozen=True)
class AmiConfig:
    enabled: bool = opt(True, yes_no, "Run the AMI listener in `calltracking run`")
    host: str = opt("127.0.0.1", text)
    port: int = opt(5038, integer(1, 65535))
    username: str = opt("calltracking", text)
    secret: str = opt("", text, "Required: the secret of the AMI user", secret=True)
    ping_interval: float = opt(10.0, number(1.0), "Seconds between keep-alive pings")
    reconnect_max: float = opt(30.0, number(1.0), "Longest back-off between reconnects (seconds)")
    originate: bool = opt(False, yes_no, "Allow click-to-call (needs the 'originate' privilege)")
    parser_process: bool = opt(False, yes_no, "Parse the AMI byte stream in a helper process (one "
                                "more Python process; frees the listener's own for the calls)")
    queue_log: str = opt("/var/log/asterisk/queue_log", text, "Asterisk's queue_log, read after a "
                         "reconnect for what happened meanwhile (empty: not read; optional)")


@dataclass(frozen=True)
class AgiConfig:
    listen: tuple = opt(("127.0.0.1", 4573), hostport, "FastAGI listen address")
    timeout_ms: int = opt(300, integer(10, 60000), "Time budget of every hook")
    callerid_prefix: bool = opt(True, yes_no, "Prefix the caller-ID name with the source label")
    promo_retries: int = opt(2, integer(0, 10), "Extra attempts for a wrong promo code")
    processes: int = opt(1, integer(1, 32), "FastAGI server processes sharing the port "
                         "(SO_REUSEPORT; one per CPU core on a busy PBX)")
    write_wait_ms: int = opt(0, integer(0, 60000), "How long a hook waits for its call row to be "
                             "committed before answering anyway (the row is in the spool and "
                             "written in the background then; without a spool at least 50)")
    spool_dir: str = opt("/var/lib/calltracking/agi-spool", text, "Where each FastAGI process "
                           "spools its call rows before answering (replayed after a crash; "
                           "empty: no spool)")
    mset: bool = opt(True, yes_no, "Set the plain CT_* variables with one EXEC MSet instead of one "
                     "SET VARIABLE each (turn off with [compat] res_agi = 1.4 in asterisk.conf)")
    max_connections: int = opt(256, integer(1, 65536), "Open FastAGI connections per server process; "
                               "a connection beyond it is closed at once (Asterisk then runs "
                               "the dialplan's defaults for that call)")
    allowed_peers: tuple = opt(networks("127.0.0.1/8, ::1"), networks,
                               "Addresses and networks (CIDR) allowed to connect to FastAGI; "
                               "others are closed at once")


@dataclass(frozen=True)
class AsteriskConfig:
    config_dir: str = opt("/etc/asterisk", text, "Asterisk's configuration directory")
    agi_bin_dir: str = opt("/var/lib/asterisk/agi-bin", text, "Asterisk's AGI script directory")
    whisper_dir: str = opt("/var/lib/asterisk/sounds/calltracking", text, "Operator whispers (read by Asterisk)")
    outbound_contexts: tuple = opt((), contexts, "Dialplan contexts whose new calls are outbound "
                                   "(comma-separated; operators' phones are detected without it)")


@dataclass(frozen=True)
class RecordingsConfig:
    dir: str = opt("/var/spool/asterisk/monitor", text, "Where MixMonitor writes recordings")
    format: str = opt("mp3", choice("wav", "mp3", "ogg"), "Convert recordings to this format")
    keep_days: int = opt(0, integer(0), "Delete recordings older than N days (0 = keep)")
