# shellcheck shell=bash
# Runs dist/kamailio/kamailio.cfg (the untrusted SIP provider) for a test, on loopback.
#
# Source it and call the functions, or run it as a command (the C tests do):
#   bash tests/lib/kamailio.sh port                       -> prints a free TCP+UDP port
#   bash tests/lib/kamailio.sh users DIR < "user password" lines
#   bash tests/lib/kamailio.sh start DIR PORT VOICEMAIL_URI [kamailio args, e.g. -A X]
#   bash tests/lib/kamailio.sh stop DIR                   -> fails if kamailio logged errors
# With KAM_OWNER_PID set, kamailio is also stopped when that process ends (a test that
# crashes leaves no provider behind).
#
# Everything kamailio writes (log, pid file, runtime dir, db_text tables) is under DIR.
# Passwords reach kamailio through the users file, never through a command line.

kam_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kam_cfg=${KAM_CFG:-$kam_root/dist/kamailio/kamailio.cfg}
kam_bin=${KAM_BIN:-$(command -v kamailio || echo /usr/sbin/kamailio)}

# kam_free_port: prints a loopback port that is free for both TCP and UDP now.
kam_free_port() {
    python3 - <<'EOF'
import socket
for _ in range(100):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    print(port)
    break
else:
    raise SystemExit("no free port")
EOF
}

# kam_write_users DIR: reads "user password" lines on stdin and writes the db_text
# tables kamailio authenticates REGISTER against (DIR/db/subscriber, DIR/db/version).
kam_write_users() {
    local dir=$1 db=$1/db user pass
    mkdir -p "$db" || return 1
    chmod 700 "$db"
    {
        echo "id(int,auto) username(string) domain(string,null) password(string)"
        local id=1
        while read -r user pass; do
            [ -n "$user" ] || continue
            # db_text separates columns with ':' and escapes with '\'
            user=${user//\\/\\\\}
            user=${user//:/\\:}
            pass=${pass//\\/\\\\}
            pass=${pass//:/\\:}
            printf '%d:%s::%s\n' "$id" "$user" "$pass"
            id=$((id + 1))
        done
    } >"$db/subscriber.tmp" || return 1
    mv "$db/subscriber.tmp" "$db/subscriber" || return 1
    printf 'table_name(string) table_version(int)\nsubscriber:7\n' >"$db/version.tmp" &&
        mv "$db/version.tmp" "$db/version"
    # the directory is referenced by DBURL; keep a note for kam_start
    : >"$dir/.kam_users"
}

# kam_listening PORT: true once something accepts TCP connections on 127.0.0.1:PORT.
kam_listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# kam_start DIR PORT VOICEMAIL_URI [ARGS...]: starts kamailio in the background on
# tcp+udp 127.0.0.1:PORT and waits until it listens. ARGS go to kamailio (e.g.
# -A WITH_INVITE_AUTH -A 'FR_INV_TIMER=3000'). Sets KAM_PID.
kam_start() {
    local dir=$1 port=$2 vm=$3
    shift 3
    [ -e "$dir/.kam_users" ] || { echo "kam_start: write the users first (kam_write_users)" >&2; return 1; }
    [ -x "$kam_bin" ] || { echo "kam_start: kamailio not installed (scripts/deps.sh)" >&2; return 1; }
    mkdir -p "$dir/run" || return 1
    rm -f "$dir/kamailio.pid"
    "$kam_bin" -DD -E -m 64 -M 8 -f "$kam_cfg" -Y "$dir/run" -P "$dir/kamailio.pid" \
        -l "tcp:127.0.0.1:$port" -l "udp:127.0.0.1:$port" \
        -A "DBURL=\"text://$dir/db\"" -A "VOICEMAIL_URI=\"$vm\"" "$@" \
        </dev/null >"$dir/kamailio.log" 2>&1 &
    KAM_PID=$!
    echo "$KAM_PID" >"$dir/kamailio.main.pid"
    # KAM_OWNER_PID: a process whose end (even a crash) also ends this kamailio
    if [ -n "${KAM_OWNER_PID:-}" ]; then
        (
            while kill -0 "$KAM_OWNER_PID" 2>/dev/null && kill -0 "$KAM_PID" 2>/dev/null; do
                sleep 0.5
            done
            kill -TERM "$KAM_PID" 2>/dev/null
        ) </dev/null >/dev/null 2>&1 &
    fi
    local tries=0
    until kam_listening "$port"; do
        if ! kill -0 "$KAM_PID" 2>/dev/null; then
            echo "kam_start: kamailio exited; its log:" >&2
            sed 's/^/  kamailio: /' "$dir/kamailio.log" >&2
            return 1
        fi
        tries=$((tries + 1))
        if [ "$tries" -gt 200 ]; then
            echo "kam_start: kamailio does not listen on $port after 10 s" >&2
            kam_stop "$dir" >/dev/null 2>&1
            return 1
        fi
        sleep 0.05
    done
}

# kam_errors DIR [LINES]: prints the errors kamailio logged in the first LINES lines of
# its log (all by default); none: prints nothing. A phone that drops its TCP connection
# (reset) is normal life for a provider, not an error.
kam_errors() {
    head -n "${2:-1000000000}" "$1/kamailio.log" |
        grep -E '(ERROR|CRITICAL|ALERT|BUG):' |
        grep -vE 'tcp_read_data\(\): (error reading: Connection reset by peer|-> \[)|tcp_read_req\(\): ERROR: tcp_read_req: error reading' ||
        true
}

# kam_stop DIR: stops kamailio (SIGTERM, then SIGKILL after 5 s) and fails if it
# logged errors while it ran.
kam_stop() {
    local dir=$1 pid tries=0
    pid=$(cat "$dir/kamailio.main.pid" 2>/dev/null) || { echo "kam_stop: not started" >&2; return 1; }
    # what it logs while its processes shut down (EOF on internal pipes) is not judged
    local lines
    lines=$(wc -l <"$dir/kamailio.log")
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ]; then
            kill -KILL "$pid" 2>/dev/null
            echo "kam_stop: kamailio ignored SIGTERM" >&2
            break
        fi
        sleep 0.05
    done
    rm -f "$dir/kamailio.main.pid"
    local errors
    errors=$(kam_errors "$dir" "$lines")
    if [ -n "$errors" ]; then
        echo "kam_stop: kamailio logged errors:" >&2
        printf '%s\n' "$errors" | sed 's/^/  kamailio: /' >&2
        return 1
    fi
}

# As a command (see the top of this file).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    cmd=${1:-}
    shift || true
    case $cmd in
    port) kam_free_port ;;
    users) kam_write_users "$@" ;;
    start) kam_start "$@" ;;
    stop) kam_stop "$@" ;;
    *)
        echo "usage: $0 port | users DIR | start DIR PORT VOICEMAIL_URI [ARGS] | stop DIR" >&2
        exit 2
        ;;
    esac
fi
