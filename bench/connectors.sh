# Benchmark figures 3, 4 and 5, connectors (see docs/benchmarks.md): omni-phonelog reading an Asterisk
# Master.csv, omni-email reading a private Dovecot, and omni-sms taking signed webhooks from
# bench/webhookgen, each into omnirouted on the bench's Redis.
# Sourced by bench/run (POSIX sh), which defines tmp, BUILD, here and the helpers used below (die,
# die_log, rcli, info, empty_redis, alive, cpu_ticks, stop, load, now). Only functions and settings here;
# bench/run calls connectors_check before its rounds, then phonelog_phase, email_phase and sms_phase, and
# connectors_cleanup from its exit trap.
#
# A run: an emptied Redis, omnirouted started and proved ready (one message the whole way), a fresh spool
# and state directory, then the clock starts, the connector starts, and the clock stops when the router
# has stored every message the input makes. "Stored" is watched cheaply while the run goes (EXISTS on the
# last message's key, every 10 ms: the connector sends in input order, so it is stored last or within a few
# ms of the last, the router spreading customers over its Redis connections) and then proved by counting
# omni:msg:* keys; if the count is short, counting goes on until it is whole.
# Every wait has a deadline; a figure that cannot be measured ends the bench with an error.
# shellcheck shell=sh disable=SC2154,SC2034 # tmp, here, ep...: bench/run's variables, set or read there

PHONELOG_LINES=${BENCH_PHONELOG_LINES:-20000}
EMAILS=${BENCH_EMAILS:-2000}
CONN_ROUNDS=${BENCH_CONNECTOR_ROUNDS:-5}
CONN_DEADLINE=${BENCH_CONNECTOR_DEADLINE:-120}
SMS_POSTS=${BENCH_SMS_POSTS:-10000}
SMS_CONNECTIONS=${BENCH_SMS_CONNECTIONS:-16}
conn_pid="" wait_pid="" dovecot_dir="" dovecot_started=""

# Debian's python3 when there (a version manager's shim costs a shell script per call); any python3 works.
PYTHON=$(command -v /usr/bin/python3 || command -v python3 || true)
gen() { "$PYTHON" "$here/connectors.py" "$@"; }
ns() { date +%s%N; }

# Fails before the long ingest rounds when a connector figure could not be measured anyway.
connectors_check() {
    for b in bin/omni-phonelog bin/omni-email bin/omni-sms bench/webhookgen; do
        [ -x "$BUILD/$b" ] || die "$BUILD/$b missing: make BUILD=$BUILD bench"
    done
    [ -n "$PYTHON" ] || die "python3 is needed to generate the connector inputs"
    { command -v dovecot && command -v doveadm; } >/dev/null ||
        die "the email figure needs Dovecot (Debian's dovecot-imapd; scripts/install-deps)"
    [ "$(id -u)" = 0 ] || die "the email figure needs root: Dovecot drops privileges to its mail user"
    id dovecot >/dev/null 2>&1 || die "no dovecot user (it comes with dovecot-core)"
}

# stored_msgs: omni:msg:* keys in Redis, exactly (one KEYS inside Redis, for error messages).
stored_msgs() { rcli eval "return #redis.call('keys', ARGV[1])" 0 'omni:msg:*'; }

# wait_stored SECONDS KEY WANT: until KEY exists and WANT messages are stored, the connector alive all the
# while (connectors.py wait: one process polling over one connection). Sets done_ns to the first moment
# completion was seen. Returns 1 on the deadline, 2 when the connector exited. In the background with a
# wait, like load, so that a signal is served at once.
wait_stored() {
    gen wait "$tmp/redis.sock" "$2" "$3" "$1" "$conn_pid" >"$tmp/wait.out" &
    wait_pid=$!
    rc=0
    wait "$wait_pid" || rc=$?
    wait_pid=""
    done_ns=$(cat "$tmp/wait.out")
    return "$rc"
}

# conn_router SIDE: omnirouted with the ingest config on an emptied Redis, proved ready by one message.
conn_router() {
    empty_redis
    "$BUILD/bin/omnirouted" -c "$tmp/omnirouter.yaml" 2>>"$tmp/$1.log" &
    server_pid=$!
    ep="ipc://$tmp/ingest.sock"
    load --clients 1 --messages 1 --window 1 --run "probe-$1-$2-$$" --deadline 15 ||
        die_log "$1" "omnirouted did not become ready"
}

# conn_run SIDE ROUND N KEY WANT CONFIG: one timed run of omni-SIDE with CONFIG, N units of input; appends
# to $tmp/conn_rows: side round units/s seconds conn_us/unit router_us/msg redis_us/msg msgs/read extra_us/unit
# (a unit is a line of the call log or a mail; extra: conn_extra_ticks, Dovecot's CPU for email).
conn_run() {
    side=$1 round=$2 n=$3 key=$4 want=$5 conf=$6
    "$BUILD/bin/omni-$side" --config "$conf" --check-config >>"$tmp/$side.log" 2>&1 ||
        die_log "$side" "--check-config refused $conf"
    log_lines=$(wc -l <"$tmp/$side.log")
    before="$(info total_reads_processed used_cpu_sys used_cpu_user) $(cpu_ticks "$server_pid") $(conn_extra_ticks)"
    t0=$(ns)
    "$BUILD/bin/omni-$side" --config "$conf" 2>>"$tmp/$side.log" &
    conn_pid=$!
    rc=0
    wait_stored "$CONN_DEADLINE" "$key" "$want" || rc=$?
    [ "$rc" = 2 ] && die_log "$side" "exited during round $round"
    [ "$rc" = 0 ] ||
        die_log "$side" "round $round: $(( $(stored_msgs) - base ))/$n_want messages stored after $CONN_DEADLINE s"
    after="$(info total_reads_processed used_cpu_sys used_cpu_user) $(cpu_ticks "$server_pid") $(conn_extra_ticks)"
    cticks=$(cpu_ticks "$conn_pid")
    stop "$conn_pid"
    conn_pid=""
    alive "$server_pid" || die_log "$side" "omnirouted exited during round $round"
    # The figure stands, but what the connector complained of (a fallback fetch, a skipped record) is shown.
    if [ "$(wc -l <"$tmp/$side.log")" -gt "$log_lines" ]; then
        echo "bench: omni-$side logged in round $round (log_level warn):" >&2
        tail -n "+$((log_lines + 1))" "$tmp/$side.log" | head -n 5 >&2
    fi
    stop "$server_pid"
    server_pid=""
    echo "$side $round $n $t0 $done_ns $cticks $n_want $before $after" | awk -v hz="$(getconf CLK_TCK)" '{
        s = ($5 - $4) / 1e9; n = $3
        printf "%s %s %.0f %.3f %.1f %.1f %.1f %.1f %.1f\n", $1, $2, n / s, s, $6 * 1e6 / hz / n,
            ($16 - $11) * 1e6 / hz / $7, (($14 + $15) - ($9 + $10)) * 1e6 / $7, $7 / (($13 - $8) ? ($13 - $8) : 1),
            ($17 - $12) * 1e6 / hz / n }' >>"$tmp/conn_rows"
}

# ---- Figure 3: omni-phonelog ----

phonelog_phase() {
    cr=$1
    if [ ! -f "$tmp/Master.csv" ]; then
        out=$(gen cdr "$tmp/Master.csv" "$PHONELOG_LINES") || die "generating the call log failed"
        plog_msgs=${out% *} plog_last=${out#* }
    fi
    conn_router phonelog "$cr"
    base=$(stored_msgs)
    d="$tmp/phonelog.$cr"
    mkdir -p "$d"
    cat >"$d/phonelog.yaml" <<EOF
router:
  endpoint: "ipc://$tmp/ingest.sock"
spool_dir: $d/spool
log_level: warn
default_country: US
phonelog:
  path: $tmp/Master.csv
  pbx: bench
  dates: utc
  start: beginning
EOF
    conn_extra_ticks() { echo 0; }
    n_want=$plog_msgs
    conn_run phonelog "$cr" "$PHONELOG_LINES" "omni:msg:phone:bench:$plog_last" $((base + plog_msgs)) "$d/phonelog.yaml"
    rm -rf "$d"
}

# ---- Figure 4: omni-email against a private Dovecot ----

# dovecot_start ROUNDS: Dovecot on a free loopback port with one user per round, bench1..benchROUNDS, each
# with the same EMAILS generated messages in a Maildir of its own, so that every run reads mail Dovecot has
# never served (its cache fills as clients fetch: a second read of the same mailbox is faster), as new mail
# is. Mail is owned by the dovecot user (Dovecot refuses uid 0 for mail). The mailboxes are indexed (UIDs
# given) before any run is timed.
dovecot_start() {
    # Its own directory, world-traversable (the mail processes run as dovecot), removed by the exit trap.
    dovecot_dir=$(mktemp -d "${TMPDIR:-/tmp}/omni-bench-dovecot.XXXXXX")
    chmod 755 "$dovecot_dir"
    mkdir -p "$dovecot_dir/run" "$dovecot_dir/state" "$dovecot_dir/home/bench1/Maildir/cur" \
        "$dovecot_dir/home/bench1/Maildir/new" "$dovecot_dir/home/bench1/Maildir/tmp"
    out=$(gen mail "$dovecot_dir/home/bench1/Maildir" "$EMAILS") || die "generating the mail failed"
    mail_msgs=${out% *} mail_last=${out#* }
    uid=$(id -u dovecot) gid=$(id -g dovecot)
    u=1
    while [ "$u" -le "$1" ]; do
        [ "$u" = 1 ] || cp -a "$dovecot_dir/home/bench1" "$dovecot_dir/home/bench$u"
        echo "bench$u:{PLAIN}secret:$uid:$gid::$dovecot_dir/home/bench$u" >>"$dovecot_dir/passwd"
        u=$((u + 1))
    done
    chown -R dovecot:dovecot "$dovecot_dir/home"
    attempt=1
    while :; do
        imap_port=$(gen freeport)
        cat >"$dovecot_dir/dovecot.conf" <<EOF
instance_name = omni-bench-$$
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
base_dir = $dovecot_dir/run
state_dir = $dovecot_dir/state
log_path = $dovecot_dir/dovecot.log
info_log_path = $dovecot_dir/dovecot.log
default_internal_user = dovenull
default_login_user = dovenull
service anvil {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dovecot_dir/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $dovecot_dir/passwd
}
mail_location = maildir:~/Maildir
first_valid_uid = 1
EOF
        # It daemonizes: it returns once the master runs (or failed, e.g. to bind a port taken meanwhile).
        if dovecot -c "$dovecot_dir/dovecot.conf" </dev/null >/dev/null 2>>"$tmp/email.log"; then
            dovecot_started=1
            wait_until 15 gen greets "$imap_port" && break
            dovecot_stop
        fi
        [ "$attempt" -lt 3 ] || dovecot_fail "Dovecot did not start and greet on port $imap_port within 15 s"
        attempt=$((attempt + 1)) # another free port
    done
    # Index each mailbox now (UIDs), as Dovecot does when mail is delivered, so no timed run pays for it.
    u=1
    while [ "$u" -le "$1" ]; do
        got=$(doveadm -c "$dovecot_dir/dovecot.conf" mailbox status -u "bench$u" messages INBOX \
              2>>"$tmp/email.log" | sed -n 's/.*messages=\([0-9]*\).*/\1/p')
        [ "$got" = "$mail_msgs" ] || dovecot_fail "Dovecot sees ${got:-no} messages for bench$u, not $mail_msgs"
        u=$((u + 1))
    done
}

# dovecot_fail WHY: dies showing the end of Dovecot's log and of the email log.
dovecot_fail() {
    tail -n 20 "$dovecot_dir/dovecot.log" "$tmp/email.log" >&2 2>/dev/null || true
    die "$1"
}

# dovecot_pids: processes with a file open in the instance's directory (the master, its services, the
# mail process of a connection): the instance's own processes, found without any name matching.
dovecot_pids() { gen holders "$dovecot_dir"; }

# dovecot_stop: doveadm stop, then what is left of this instance gets SIGTERM, then SIGKILL, each with a
# deadline.
dovecot_stop() {
    [ -n "$dovecot_started" ] || return 0
    doveadm -c "$dovecot_dir/dovecot.conf" stop >/dev/null 2>&1 || true
    for sig in none TERM KILL; do
        if [ "$sig" != none ]; then
            for p in $(dovecot_pids); do kill -"$sig" "$p" 2>/dev/null || true; done
        fi
        wait_until 5 dovecot_gone && break
    done
    dovecot_started=""
}
dovecot_gone() { [ -z "$(dovecot_pids)" ]; }

# CPU of the Dovecot instance (master, auth, imap processes) in clock ticks, from /proc: each living
# process's own and that of its children it has reaped (cutime, cstime), so an imap process that ended in
# between (a connection the connector dropped and made again) still counts, in its parent's. Read while
# the run's imap process still lives.
dovecot_ticks() {
    t=0
    for p in $(dovecot_pids); do
        t=$((t + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

email_phase() {
    cr=$1
    [ -n "$dovecot_started" ] || dovecot_start "$CONN_ROUNDS"
    conn_router email "$cr"
    base=$(stored_msgs)
    d="$tmp/email.$cr"
    mkdir -p "$d"
    cat >"$d/email.yaml" <<EOF
router:
  endpoint: "ipc://$tmp/ingest.sock"
spool_dir: $d/spool
log_level: warn
email:
  url: "imap://127.0.0.1:$imap_port"
  tls: none
  user: bench$cr
  password: secret
  account: bench
  address: support@example.com
  initial: all
EOF
    conn_extra_ticks() { dovecot_ticks; }
    n_want=$mail_msgs
    conn_run email "$cr" "$EMAILS" "omni:identity:email:$mail_last" $((base + mail_msgs)) "$d/email.yaml"
    rm -rf "$d"
}

# ---- Figure 5: omni-sms under signed webhooks ----

# sms_phase ROUND: omni-sms (listening on a free port, read from its log) takes SMS_POSTS Twilio-signed POSTs
# from bench/webhookgen over SMS_CONNECTIONS keep-alive connections while omnirouted stores them. The figure
# is POSTs answered 200 per second (each answered once spooled and fsynced); the row also has the seconds
# until the router had stored every one, the connector's CPU per POST, and POSTs per spool fsync (from the
# connector's closing log line).
sms_phase() {
    cr=$1
    conn_router sms "$cr"
    base=$(stored_msgs)
    d="$tmp/sms.$cr"
    mkdir -p "$d"
    printf 'benchtoken\n' >"$d/token"
    chmod 600 "$d/token"
    cat >"$d/sms.yaml" <<EOF
router:
  endpoint: "ipc://$tmp/ingest.sock"
spool_dir: $d/spool
log_level: info
sms:
  listen: "127.0.0.1:0"
  public_url: https://bench.example/twilio
  auth_token: $d/token
EOF
    "$BUILD/bin/omni-sms" --config "$d/sms.yaml" 2>"$d/sms.log" &
    conn_pid=$!
    wait_until 15 sms_listening "$d/sms.log" || { cat "$d/sms.log" >&2; die "omni-sms did not listen within 15 s"; }
    port=$(sms_port "$d/sms.log")
    before="$(info used_cpu_sys used_cpu_user) $(cpu_ticks "$server_pid")"
    "$BUILD/bench/webhookgen" --port "$port" --posts "$SMS_POSTS" --connections "$SMS_CONNECTIONS" \
        --run "sms-$cr-$$" --deadline "$CONN_DEADLINE" >"$tmp/webhookgen.out" &
    load_pid=$!
    rc=0
    wait "$load_pid" || rc=$?
    load_pid=""
    [ "$rc" = 0 ] || { tail -n 20 "$d/sms.log" >&2; die "sms round $cr: webhookgen failed: $(cat "$tmp/webhookgen.out")"; }
    t_answered=$(ns)
    last=$(sed -n 's/.* last=\([^ ]*\).*/\1/p' "$tmp/webhookgen.out")
    wait_stored "$CONN_DEADLINE" "omni:msg:$last" $((base + SMS_POSTS)) ||
        { tail -n 20 "$d/sms.log" >&2; die "sms round $cr: the router did not store every message"; }
    after="$(info used_cpu_sys used_cpu_user) $(cpu_ticks "$server_pid")"
    cticks=$(cpu_ticks "$conn_pid")
    stop "$conn_pid"
    conn_pid=""
    stop "$server_pid"
    server_pid=""
    fsyncs=$(sed -n 's/.* answered once spooled, in \([0-9]*\) fsyncs.*/\1/p' "$d/sms.log")
    # stored_s: from the last answer until the router had every message (0 when it kept up).
    echo "$cr $(cat "$tmp/webhookgen.out") $t_answered $done_ns $cticks ${fsyncs:-0} $before $after" |
        awk -v hz="$(getconf CLK_TCK)" '{
        for (i = 2; i <= 6; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        n = f["posts"]; late = ($8 - $7) / 1e9
        printf "sms %s %s %s %.3f %.1f %.1f %.1f %.1f %s\n", $1, f["posts_per_s"], f["seconds"], (late > 0 ? late : 0),
            $9 * 1e6 / hz / n, n / ($10 ? $10 : 1), ($16 - $13) * 1e6 / hz / n, (($14 + $15) - ($11 + $12)) * 1e6 / n,
            f["retried"] }' >>"$tmp/sms_rows"
    rm -rf "$d"
}
sms_port() { sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1"; }
sms_listening() { [ -n "$(sms_port "$1")" ]; }

# The table of omni-sms runs, for people.
sms_table() {
    awk 'BEGIN { printf "%-9s %5s %8s %7s %9s %10s %11s %11s %10s %7s\n", "connector", "round", "posts/s", "seconds",
             "stored_s", "conn_us/p", "posts/fsync", "router_us/m", "redis_us/m", "retried" }
         { printf "%-9s %5s %8s %7s %9s %10s %11s %11s %10s %7s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' \
        "$tmp/sms_rows"
}

# The table of connector runs, for people.
connectors_table() {
    awk 'BEGIN { printf "%-9s %5s %8s %7s %10s %11s %10s %9s %10s\n", "connector", "round", "units/s",
             "seconds", "conn_us/u", "router_us/m", "redis_us/m", "msgs/read", "imapd_us/u" }
         { printf "%-9s %5s %8s %7s %10s %11s %10s %9s %10s\n", $1, $2, $3, $4, $5, $6, $7, $8,
             $1 == "email" ? $9 : "-" }' "$tmp/conn_rows"
}

connectors_cleanup() {
    for p in $wait_pid $conn_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ -z "$dovecot_dir" ] || { dovecot_stop; rm -rf "$dovecot_dir"; }
}
