#!/usr/bin/env bash
# Install, upgrade or remove calltracking on a Debian/Ubuntu Asterisk server.
# Idempotent: running it again upgrades code and database and keeps config and data.
#
#   sudo ./install.sh [--start] [--timestampevents]     install or upgrade
#   sudo ./install.sh --uninstall [--purge]             remove (--purge: also config and data)
#   ./install.sh --root DIR --no-systemd                into a temporary root (tests, packaging)
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT=""
SYSTEMD=auto
ASTERISK=yes
START=no
UNINSTALL=no
PURGE=no
TSE=ask
# The service runs as its own user: use the system's Python (a Python under a home directory,
# e.g. pyenv's, is not readable by that user). Override with PYTHON=/path/to/python3.
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
say() { echo "calltracking: $*"; }
die() { echo "calltracking: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        --root=*) ROOT="${1#--root=}" ;;
        --no-systemd) SYSTEMD=no ;;
        --no-asterisk) ASTERISK=no ;;
        --start) START=yes ;;
        --uninstall) UNINSTALL=yes ;;
        --purge) PURGE=yes ;;
        --timestampevents) TSE=yes ;;
        --no-timestampevents) TSE=no ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
    shift
done

if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
elif [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0), or use --root DIR"
fi
if [ "$SYSTEMD" = auto ]; then
    if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then SYSTEMD=yes; else SYSTEMD=no; fi
fi

USER_NAME=calltracking
OPT="$ROOT/opt/calltracking"
ETC="$ROOT/etc/calltracking"
CONF="$ETC/config.ini"
VARLIB="$ROOT/var/lib/calltracking"
LOGDIR="$ROOT/var/log/calltracking"
UNIT="$ROOT/etc/systemd/system/calltracking.service"
BINLINK="$ROOT/usr/local/bin/calltracking"
AST_ETC="$ROOT/etc/asterisk"
AGI_BIN="$ROOT/var/lib/asterisk/agi-bin"
INC_EXT="#include extensions_calltracking.conf"
INC_MGR="#include manager_calltracking.conf"

# Real root: manage the user and run services; --root: files only.
REAL=yes; [ -n "$ROOT" ] && REAL=no

asterisk_running() { [ "$REAL" = yes ] && command -v asterisk >/dev/null 2>&1 && asterisk -rx "core show version" >/dev/null 2>&1; }

asterisk_reload() {
    if asterisk_running; then
        asterisk -rx "dialplan reload" >/dev/null && asterisk -rx "manager reload" >/dev/null \
            && say "reloaded Asterisk dialplan and manager" || say "warning: Asterisk reload failed"
    fi
}

remove_line() {  # remove_line FILE LINE
    [ -f "$1" ] || return 0
    if grep -qxF "$2" "$1"; then
        grep -vxF "$2" "$1" > "$1.ct-tmp" || true
        cat "$1.ct-tmp" > "$1" && rm -f "$1.ct-tmp"
        say "removed '$2' from ${1#$ROOT}"
    fi
}

ini_get() {  # ini_get FILE SECTION KEY
    awk -F'=' -v s="[$2]" -v k="$3" '
        /^[ \t]*\[/ { in_s = ($0 ~ "^[ \t]*\\[" substr(s,2,length(s)-2) "\\]") }
        in_s && $1 ~ "^[ \t]*" k "[ \t]*$" { v=$0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]*([;#].*)?$/, "", v); print v; exit }
    ' "$1"
}

stop_service() {
    if [ "$SYSTEMD" = yes ] && systemctl list-unit-files calltracking.service >/dev/null 2>&1; then
        systemctl stop calltracking.service 2>/dev/null || true
    fi
    if [ -f "$ROOT/run/calltracking.pid" ]; then
        kill "$(cat "$ROOT/run/calltracking.pid")" 2>/dev/null || true
        rm -f "$ROOT/run/calltracking.pid"
    fi
}

# ------------------------------------------------------------------ uninstall
if [ "$UNINSTALL" = yes ]; then
    stop_service
    if [ "$SYSTEMD" = yes ]; then
        systemctl disable calltracking.service >/dev/null 2>&1 || true
    fi
    for part in agi ami web scheduler; do
        [ "$SYSTEMD" = yes ] && systemctl disable --now "calltracking-$part.service" >/dev/null 2>&1 || true
        rm -f "$(dirname "$UNIT")/calltracking-$part.service"
    done
    rm -f "$UNIT"
    [ "$SYSTEMD" = yes ] && systemctl daemon-reload || true
    rm -rf "$OPT"
    rm -f "$BINLINK" "$AGI_BIN/calltracking-agi"
    remove_line "$AST_ETC/extensions.conf" "$INC_EXT"
    remove_line "$AST_ETC/manager.conf" "$INC_MGR"
    rm -f "$AST_ETC/extensions_calltracking.conf" "$AST_ETC/manager_calltracking.conf"
    asterisk_reload
    if [ "$PURGE" = yes ]; then
        rm -rf "$ETC" "$VARLIB" "$LOGDIR"
        if [ "$REAL" = yes ] && id "$USER_NAME" >/dev/null 2>&1; then
            userdel "$USER_NAME" >/dev/null 2>&1 || true
        fi
        say "uninstalled; configuration and data deleted (--purge)"
    else
        say "uninstalled; kept $ETC and $VARLIB (use --purge to delete them)"
    fi
    exit 0
fi

# -------------------------------------------------------------------- install
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is required ($PYTHON is $("$PYTHON" -V 2>&1))"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || {
    if [ "$REAL" = yes ] && command -v apt-get >/dev/null; then
        say "installing python3-venv"; apt-get install -y -qq python3-venv >/dev/null
    else die "python venv/ensurepip missing: apt-get install python3-venv"; fi
}

# The operator's whisper is spoken by espeak-ng (English and Russian voices; docs/whisper.md).
if ! command -v espeak-ng >/dev/null 2>&1; then
    if [ "$REAL" = yes ] && command -v apt-get >/dev/null; then
        say "installing espeak-ng"; apt-get install -y -qq espeak-ng >/dev/null
    else say "notice: espeak-ng not found: whispers can only be uploaded recordings (apt-get install espeak-ng)"; fi
fi

# 1. system user
OWNER=root
if [ "$REAL" = yes ]; then
    if ! id "$USER_NAME" >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/calltracking --no-create-home \
                --shell /usr/sbin/nologin "$USER_NAME"
        say "created system user $USER_NAME"
    fi
    if getent group asterisk >/dev/null 2>&1; then
        usermod -a -G asterisk "$USER_NAME"
    fi
    OWNER=$USER_NAME
fi

# Configuration, data and logs hold secrets and callers' data: the service user and its group
# only (0750 directories, 0640 files), also for files made by an older version.
mkdir -p "$(dirname "$BINLINK")"
install -d -m 750 "$ETC" "$VARLIB" "$LOGDIR"
chmod 750 "$ETC" "$VARLIB" "$LOGDIR"
chmod -R g-w,o-rwx "$VARLIB" "$LOGDIR"

# 2. virtualenv + package (upgrade in place when present)
if [ ! -x "$OPT/bin/python" ]; then
    "$PYTHON" -m venv "$OPT"
    say "created virtualenv $OPT"
fi
"$OPT/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# Build from a clean copy: a stale build/ directory in the checkout would ship removed files.
STAGE="$(mktemp -d)"; PIPLOG="$STAGE.log"
tar -C "$SRC" --exclude=./.venv --exclude=./build --exclude='*.egg-info' --exclude=.git \
    --exclude=__pycache__ --exclude=./tests --exclude=./bench -cf - . | tar -C "$STAGE" -xf -
"$OPT/bin/pip" install --disable-pip-version-check --upgrade "$STAGE" >"$PIPLOG" 2>&1 \
    || { tail -30 "$PIPLOG" >&2; rm -rf "$STAGE" "$PIPLOG"; die "pip install failed"; }
rm -rf "$STAGE" "$PIPLOG"
ln -sfn "${OPT#$ROOT}/bin/calltracking" "$BINLINK"
say "installed $("$OPT/bin/calltracking" --version 2>/dev/null | tail -1)"

# 3. configuration (never overwritten)
if [ ! -f "$CONF" ]; then
    gen() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
    WEB_SECRET="$(gen)"; AMI_SECRET="$(gen | tr -dc 'A-Za-z0-9' | cut -c1-24)"
    DB_URL="sqlite:///${VARLIB}/calltracking.db"
    # umask 077: the file holds secrets from its first byte (0600, then 0640 for the group)
    ( umask 077
      sed -e "s|^secret_key = .*|secret_key = ${WEB_SECRET}|" \
          -e "s|^secret =.*|secret = ${AMI_SECRET}|" \
          -e "s|^url = sqlite:.*|url = ${DB_URL}|" \
          -e "s|^spool_dir = .*|spool_dir = ${VARLIB}/agi-spool|" \
          -e "s|^config_dir = .*|config_dir = ${AST_ETC}|" \
          -e "s|^agi_bin_dir = .*|agi_bin_dir = ${AGI_BIN}|" \
          "$SRC/config.example.ini" > "$CONF.tmp" )
    [ "$REAL" = yes ] && chown "root:$OWNER" "$CONF.tmp"
    chmod 640 "$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
    say "wrote $CONF with generated secrets"
else
    chmod g-w,o-rwx "$CONF"
    say "kept existing $CONF"
fi
AMI_SECRET="$(ini_get "$CONF" ami secret)"

# Where the service writes besides its data and logs: the recordings directory (it converts and
# prunes Asterisk's recordings) and the directory of a SQLite database outside $VARLIB.
REC_DIR="$(ini_get "$CONF" recordings dir)"; REC_DIR="${REC_DIR:-/var/spool/asterisk/monitor}"
WHISPER_DIR="$(ini_get "$CONF" asterisk whisper_dir)"; WHISPER_DIR="${WHISPER_DIR:-/var/lib/asterisk/sounds/calltracking}"
DB_URL_NOW="$(ini_get "$CONF" database url)"
DB_DIR=""
case "$DB_URL_NOW" in
    sqlite:////*) DB_DIR="$(dirname "/${DB_URL_NOW#sqlite:////}")" ;;
esac

# 4. database
CT=("$OPT/bin/calltracking" --config "$CONF")
if [ "$REAL" = yes ]; then
    chown -R "$OWNER:$OWNER" "$VARLIB" "$LOGDIR"
    chown "root:$OWNER" "$ETC" "$CONF"
    chmod 750 "$ETC"
    runuser -u "$OWNER" -- "${CT[@]}" db upgrade
else
    "${CT[@]}" db upgrade
fi

# 5. Asterisk: dialplan + AMI user includes, classic AGI wrapper
if [ "$ASTERISK" = yes ] && [ -d "$AST_ETC" ]; then
    install -m 644 "$SRC/dialplan/extensions_calltracking.conf" "$AST_ETC/extensions_calltracking.conf"
    ( umask 077
      sed "s|@AMI_SECRET@|${AMI_SECRET}|" "$SRC/dialplan/manager_calltracking.conf" \
          > "$AST_ETC/manager_calltracking.conf.tmp" )
    chmod 640 "$AST_ETC/manager_calltracking.conf.tmp"
    mv "$AST_ETC/manager_calltracking.conf.tmp" "$AST_ETC/manager_calltracking.conf"
    if [ "$REAL" = yes ] && getent group asterisk >/dev/null 2>&1; then
        chgrp asterisk "$AST_ETC/manager_calltracking.conf"
    fi
    for pair in "extensions.conf|$INC_EXT" "manager.conf|$INC_MGR"; do
        f="$AST_ETC/${pair%%|*}"; line="${pair#*|}"
        touch "$f"
        if ! grep -qxF "$line" "$f"; then
            printf '\n%s\n' "$line" >> "$f"
            say "added '$line' to ${f#$ROOT}"
        fi
    done
    # AMI event times: Asterisk sends a Timestamp header only with timestampevents = yes.
    MGR="$AST_ETC/manager.conf"
    if ! grep -Eq '^[[:space:]]*timestampevents[[:space:]]*=[[:space:]]*(yes|true|on|1)' "$MGR"; then
        if [ "$TSE" = ask ] && [ -t 0 ]; then
            read -r -p "Set 'timestampevents = yes' in manager.conf [general] (recommended)? [Y/n] " a
            case "$a" in [nN]*) TSE=no ;; *) TSE=yes ;; esac
        fi
        if [ "$TSE" = yes ]; then
            if grep -q '^\[general\]' "$MGR"; then
                sed -i '/^\[general\]/a timestampevents = yes' "$MGR"
            else
                printf '[general]\ntimestampevents = yes\n\n%s\n' "$(cat "$MGR")" > "$MGR"
            fi
            say "set timestampevents = yes in ${MGR#$ROOT}"
        else
            say "notice: manager.conf has no 'timestampevents = yes'; call times will use the"
            say "        receive time. Rerun with --timestampevents to set it."
        fi
    fi
    # Recordings: MixMonitor writes them as asterisk; the scheduler converts and prunes them.
    if [ "$REAL" = yes ] && [ -d "$REC_DIR" ] && getent group asterisk >/dev/null 2>&1; then
        chgrp asterisk "$REC_DIR" && chmod g+rwxs "$REC_DIR"
        say "recordings directory $REC_DIR: group asterisk may write (calltracking is a member)"
    fi
    # Whispers: written by the service, read by Asterisk (group asterisk, setgid), nobody else.
    install -d -m 2750 "$ROOT$WHISPER_DIR"
    if [ "$REAL" = yes ] && getent group asterisk >/dev/null 2>&1; then
        chown "$OWNER:asterisk" "$WHISPER_DIR" && chmod 2750 "$WHISPER_DIR"
    fi
    if [ -d "$AGI_BIN" ]; then
        cat > "$AGI_BIN/calltracking-agi" <<EOF
#!/bin/sh
# calltracking classic AGI script (for sites without the FastAGI daemon)
exec ${OPT#$ROOT}/bin/python -m agi.classic "\$@"
EOF
        chmod 755 "$AGI_BIN/calltracking-agi"
        say "installed ${AGI_BIN#$ROOT}/calltracking-agi"
    fi
    asterisk_reload
elif [ "$ASTERISK" = yes ]; then
    say "notice: ${AST_ETC#$ROOT} not found (Asterisk not installed?); copy dialplan/*.conf there later"
fi

# 6. systemd unit ("-": a directory that does not exist yet does not stop the service)
RW_PATHS="-/var/lib/calltracking -/var/log/calltracking -${REC_DIR#$ROOT} -${WHISPER_DIR#$ROOT}"
if [ -n "$DB_DIR" ] && [ "${DB_DIR#$ROOT}" != /var/lib/calltracking ]; then
    RW_PATHS="$RW_PATHS -${DB_DIR#$ROOT}"
fi
mkdir -p "$(dirname "$UNIT")"
cat > "$UNIT" <<EOF
[Unit]
Description=calltracking: call tracking for Asterisk (FastAGI, AMI listener, scheduler, web UI)
After=network.target asterisk.service postgresql.service
Wants=asterisk.service

[Service]
Type=simple
User=$USER_NAME
Group=$USER_NAME
Environment=CALLTRACKING_CONFIG=${CONF#$ROOT}
ExecStart=${OPT#$ROOT}/bin/calltracking run
Restart=on-failure
RestartSec=3
KillSignal=SIGTERM
TimeoutStopSec=15
# Hardening ("systemd-analyze security calltracking" rates it OK): a read-only system but for
# the data, logs and recordings; no capabilities, no other users' homes, its own /tmp; only IP
# and Unix sockets; the system calls of an ordinary service; no writable+executable memory.
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${RW_PATHS}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
DevicePolicy=closed
KeyringMode=private

[Install]
WantedBy=multi-user.target
EOF
# Optional per-component units (not enabled): run the parts as separate services instead of
# `calltracking run`, e.g. `systemctl disable --now calltracking; systemctl enable --now
# calltracking-agi calltracking-ami calltracking-scheduler calltracking-web`.
for part in agi ami web scheduler; do
    sed -e "s|^Description=.*|Description=calltracking: $part only|" \
        -e "s|^ExecStart=.*|ExecStart=${OPT#$ROOT}/bin/calltracking $part|" \
        -e "s|^Wants=asterisk.service|Wants=asterisk.service\nConflicts=calltracking.service|" \
        "$UNIT" > "$(dirname "$UNIT")/calltracking-$part.service"
done
if [ "$SYSTEMD" = yes ]; then
    systemctl daemon-reload
    systemctl enable calltracking.service >/dev/null 2>&1
    if [ "$START" = yes ] || systemctl is-active --quiet calltracking.service; then
        systemctl restart calltracking.service
        say "service calltracking started (journalctl -u calltracking)"
    fi
elif [ "$START" = yes ] && [ "$REAL" = yes ]; then
    stop_service
    mkdir -p /run
    [ -f "$LOGDIR/calltracking.log" ] || install -m 640 -o "$OWNER" -g "$OWNER" /dev/null "$LOGDIR/calltracking.log"
    runuser -u "$OWNER" -- env CALLTRACKING_CONFIG="$CONF" \
        nohup "$OPT/bin/calltracking" run >>"$LOGDIR/calltracking.log" 2>&1 &
    echo $! > /run/calltracking.pid
    sleep 2
    if kill -0 "$(cat /run/calltracking.pid)" 2>/dev/null; then
        say "started calltracking run (pid $(cat /run/calltracking.pid), log $LOGDIR/calltracking.log)"
    else
        tail -5 "$LOGDIR/calltracking.log" >&2 || true
        die "calltracking run exited; see $LOGDIR/calltracking.log"
    fi
fi

WEB="$(ini_get "$CONF" web public_url)"
say "done. Next: create a web user with"
say "    sudo calltracking users add admin --role admin"
say "then open ${WEB:-http://127.0.0.1:8080} ; check the setup with: sudo calltracking doctor"
