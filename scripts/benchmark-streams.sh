#!/usr/bin/env bash
# The streams benchmark (issue 6): what does terminating exec and port-forward streams in Portcullis
# cost a client, and what does an idle interactive session cost the proxy?
#
# In one run, against one local apiserver (scripts/testenv), as bob (group sre, exec and
# port-forward rights in `dev`), with kubectl 1.27 (SPDY) and 1.33 (WebSocket towards Portcullis;
# towards the 1.20 apiserver it falls back to SPDY, which the 1.20 apiserver only speaks):
#
#   exec          stdout throughput of `kubectl exec web -c app -- head -c SIZE /dev/zero`, output
#                 to /dev/null, timed from kubectl's start to its exit
#   port-forward  one SIZE download (curl, HTTP/1.0) through `kubectl port-forward pod/web :PORT`
#                 from a local server on 127.0.0.1 (the node agent dials 127.0.0.1:PORT)
#   sessions      the proxy's RSS before and after N idle `kubectl exec -i web -- sh` sessions
#
# through these targets:
#
#   direct             the apiserver itself, TLS, bob's bearer token: the floor
#   portcullis         `portcullis proxy` in release, TLS on both sides, static token
#                      authentication, no policies (so no Mask rule), audit log on and
#                      `recordings:` on: the configuration the targets are stated for
#   portcullis-norec   the same without `recordings:` (exec only; port-forward is not recorded),
#                      to show what recording costs
#
# Targets (issue 6): throughput through Portcullis >= 0.8 of direct, per kubectl; under 100 KiB
# of proxy memory per idle interactive session.
#
#   scripts/benchmark-streams.sh                                 # the full run: ~20 minutes after the build
#   BENCH_SIZE_MIB=64 BENCH_REPEAT=1 BENCH_SESSIONS=20 scripts/benchmark-streams.sh   # a smoke run, ~5 minutes
#
# Settings (environment):
#   BENCH_SIZE_MIB        bytes per exec and per port-forward transfer, in MiB (default 512)
#   BENCH_REPEAT          measurements per cell, interleaved across targets; the median is
#                         reported (default 3)
#   BENCH_KUBECTLS        kubectl versions for the throughput cells (default "1.27 1.33")
#   BENCH_SESSIONS        idle interactive sessions for the memory measurement (default 200)
#   BENCH_SESSION_BATCH   sessions started at once (default 20; 2 cores start 200 kubectls slowly)
#   BENCH_SESSION_KUBECTL kubectl version for the sessions (default 1.33)
#   BENCH_SESSION_SETTLE  seconds the open sessions sit idle before the "idle" RSS (default 30: the
#                         proxy's 15 s keep-alive timeout has closed kubectl's unused first connections)
#   BENCH_PARTS           which measurements run (default "exec port-forward sessions"): one part
#                         alone, while working on it, takes minutes instead of twenty
#   BENCH_PERF            1: after the matrix, profile Portcullis with `perf record` during one exec
#                         (recordings on, and off) and one port-forward transfer per kubectl, and
#                         write the hottest symbols next to the report
#   BENCH_SCRATCH         working directory (cluster, logs); default a fresh mktemp dir, kept
#                         afterwards for inspection (recordings are deleted after each run)
#   BENCH_SKIP_BUILD      1: use the existing release binary
#   BENCH_OUT             the Markdown report (default .build/benchmarks/streams-<date>.md)
#
# The machine is usually shared, so absolute numbers move with its load; the load average is
# recorded with every measurement, targets are interleaved within each repetition, and the CPU
# time the proxy and the apiserver spend per GiB is recorded beside the throughput, because it
# moves much less with the machine's other load.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

size_mib=${BENCH_SIZE_MIB:-512}
repeat=${BENCH_REPEAT:-3}
kubectl_versions=${BENCH_KUBECTLS:-"1.27 1.33"}
sessions=${BENCH_SESSIONS:-200}
session_batch=${BENCH_SESSION_BATCH:-20}
session_kubectl=${BENCH_SESSION_KUBECTL:-1.33}
session_settle=${BENCH_SESSION_SETTLE:-30}
perf_profile=${BENCH_PERF:-0}
parts=" ${BENCH_PARTS:-exec port-forward sessions} "
scratch=${BENCH_SCRATCH:-$(mktemp -d /tmp/portcullis-bench-streams.XXXXXX)}
stamp=$(date +%Y%m%d-%H%M%S)
out=${BENCH_OUT:-$root/.build/benchmarks/streams-$stamp.md}
kubectl_dir=/usr/lib/google-cloud-sdk/bin
size_bytes=$((size_mib * 1048576))
mkdir -p "$scratch" "$(dirname "$out")"
scratch=$(cd "$scratch" && pwd)

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }
load_average() { cut -d' ' -f1-3 /proc/loadavg; }
kubectl_bin() { echo "$kubectl_dir/kubectl.$1"; }
runs_part() { [[ $parts == *" $1 "* ]]; }
for part in $parts; do
  case $part in exec | port-forward | sessions) ;; *) die "BENCH_PARTS: no part \"$part\" (exec, port-forward, sessions)" ;; esac
done

load_at_start=$(load_average)
say "scratch: $scratch (load average $load_at_start on $(nproc) cores)"

# --- 1. tools and the release build -------------------------------------------------------------
for v in $kubectl_versions $session_kubectl; do
  [ -x "$(kubectl_bin "$v")" ] || die "kubectl $v ($(kubectl_bin "$v")) is missing"
done
command -v python3 >/dev/null || die "python3 is needed for the port-forward data server"
command -v curl >/dev/null || die "curl is needed"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  # Release: a debug build of NIO and BoringSSL is several times slower and would measure the
  # compiler's settings, not the proxy.
  say "building portcullis (release); the first build takes a long time"
  swift build -c release --product portcullis >"$scratch/build.log" 2>&1 ||
    { tail -30 "$scratch/build.log" >&2; die "the release build failed; log: $scratch/build.log"; }
fi
portcullis=$(swift build -c release --show-bin-path)/portcullis
[ -x "$portcullis" ] || die "no release binary at $portcullis (run without BENCH_SKIP_BUILD)"

# --- 2. the cluster, and cleanup ------------------------------------------------------------------
started_pids=()
cleanup() {
  local status=$? pid
  # Only what this script started, by PID; the cluster through its own `down`.
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash "$root/scripts/testenv/testenv.sh" down --dir "$scratch/cluster" >/dev/null 2>&1 || true
  # Recordings of zeros are several GiB each; nothing in them is worth keeping.
  rm -rf "$scratch/recordings" "$scratch/recordings-sessions"
  [ $status = 0 ] || say "failed; logs in $scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the test cluster"
bash "$root/scripts/testenv/testenv.sh" up --dir "$scratch/cluster" >/dev/null
# shellcheck disable=SC1091
. "$scratch/cluster/cluster.env"
apiserver_pid=$(cat "$TESTENV_DIR/run/apiserver.pid")
mkdir -p "$scratch/home"

# A free port on 127.0.0.1 (below the ephemeral range, so no outgoing connection takes it).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
wait_until() { # seconds command...: 1 when the time ran out
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}
wait_for() { # description seconds command...
  local what=$1; shift
  wait_until "$@" || die "timed out waiting for $what"
}

# CPU time (user + system, clock ticks) a process has used so far.
ticks() { [ -n "$1" ] && awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# --- 3. the proxies -------------------------------------------------------------------------------
"$portcullis" certs --ip 127.0.0.1 --out "$scratch/proxy-pki" >/dev/null

# name port recordings(yes|no): no policies at all (defaultOutcome Allow), so no Mask rule.
proxy_config() {
  cat <<EOF
listen: {host: 127.0.0.1, port: $2}
tls: {certFile: $scratch/proxy-pki/tls.crt, keyFile: $scratch/proxy-pki/tls.key}
upstream: {kubeconfig: $TESTENV_DIR/proxy.kubeconfig}
policies: {paths: [], defaultOutcome: Allow}
authentication: {staticTokenFile: $PKI_DIR/tokens.csv}
audit: {path: $scratch/audit-$1.jsonl}
EOF
  [ "$3" = yes ] && echo "recordings: {directory: $scratch/recordings-$1, input: false, failClosed: true}"
  return 0
}

declare -A kubeconfig_of=() proxy_pid=() recordings_of=()
kubeconfig_of[direct]=$TESTENV_DIR/bob.kubeconfig
proxy_pid[direct]=
recordings_of[direct]=

start_portcullis() { # name recordings(yes|no)
  local name=$1 port
  port=$(free_port)
  proxy_config "$name" "$port" "$2" >"$scratch/proxy-$name.yaml"
  recordings_of[$name]=
  if [ "$2" = yes ]; then
    recordings_of[$name]=$scratch/recordings-$name
    mkdir -p "${recordings_of[$name]}"
  fi
  "$portcullis" proxy --config "$scratch/proxy-$name.yaml" >"$scratch/proxy-$name.log" 2>&1 &
  started_pids+=($!)
  proxy_pid[$name]=$!
  kubeconfig_of[$name]=$scratch/bob-$name.kubeconfig
  cat >"${kubeconfig_of[$name]}" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: p, cluster: {server: "https://127.0.0.1:$port", certificate-authority: "$scratch/proxy-pki/ca.crt"}}]
users: [{name: bob, user: {token: "$BOB_TOKEN"}}]
contexts: [{name: p, context: {cluster: p, user: bob}}]
current-context: p
EOF
  wait_for "$name on port $port" 60 curl -sf --cacert "$scratch/proxy-pki/ca.crt" \
    -H "Authorization: Bearer $BOB_TOKEN" "https://127.0.0.1:$port/api/v1/namespaces/dev/pods/web"
}
say "starting portcullis proxy twice (release; audit on; recordings on, and off)"
start_portcullis portcullis yes
start_portcullis portcullis-norec no
exec_targets=(direct portcullis portcullis-norec)
forward_targets=(direct portcullis)

kube() { # version target kubectl-arguments...
  local v=$1 t=$2; shift 2
  HOME=$scratch/home "$(kubectl_bin "$v")" --kubeconfig "${kubeconfig_of[$t]}" "$@"
}
# For `kube_exec ... &`: the background subshell becomes kubectl, so $! is kubectl's PID and the
# cleanup's TERM reaches it (a kubectl left behind would keep a session, and the proxy, open).
kube_exec() { # version target kubectl-arguments...
  local v=$1 t=$2; shift 2
  HOME=$scratch/home exec "$(kubectl_bin "$v")" --kubeconfig "${kubeconfig_of[$t]}" "$@"
}

# Audit records of stream sessions: ResponseStarted at the 101, ResponseComplete at the end.
session_records() { # target stage subresource
  local file=$scratch/audit-$1.jsonl
  [ -f "$file" ] || { echo 0; return; }
  grep -F "\"stage\":\"$2\"" "$file" | grep -cF "\"subresource\":\"$3\"" || true
}
records_at_least() { [ "$(session_records "$1" "$2" "$3")" -ge "$4" ]; } # target stage subresource count

# Every target and kubectl must exec and forward correctly before anything is timed: a fast
# failure would flatter a proxy.
say "checking every target with every kubectl (1 MiB, counted)"
for v in $kubectl_versions; do
  for t in "${exec_targets[@]}"; do
    n=$(kube "$v" "$t" exec -n dev web -c app -- head -c 1M /dev/zero 2>"$scratch/check-$t-$v.err" | wc -c)
    [ "$n" = 1048576 ] || die "kubectl $v exec via $t gave $n bytes: $(head -c 400 "$scratch/check-$t-$v.err")"
  done
done

# --- 4. exec throughput ---------------------------------------------------------------------------
results=$scratch/results.tsv
printf 'kind\tkubectl\ttarget\trun\tseconds\tmibs\tproxy_cpu_s\tapiserver_cpu_s\trecording_bytes\tload1\tstatus\n' >"$results"
load_max=0
note_load() {
  load1=$(cut -d' ' -f1 /proc/loadavg)
  load_max=$(awk -v a="$load_max" -v b="$load1" 'BEGIN { print (b > a ? b : a) }')
}
record_result() { # kind kubectl target run seconds proxy_ticks api_ticks recording_bytes status
  local mibs
  note_load
  mibs=$(awk -v s="$5" -v m="$size_mib" 'BEGIN { printf "%.1f", (s > 0 ? m / s : 0) }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$mibs" \
    "$(awk -v t="$6" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" \
    "$(awk -v t="$7" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" "$8" "$load1" "$9" >>"$results"
  say "$(printf '%-12s kubectl %-4s %-17s run %s  %7.2f s  %7s MiB/s  load %s  %s' "$1" "$2" "$3" "$4" "$5" "$mibs" "$load1" "$9")"
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# A failed run is recorded as such (status "failed", not in the medians) and the run goes on: a
# failure is a finding, not a reason to lose the rest of the measurements.
run_exec() { # kubectl target run
  local v=$1 t=$2 run=$3 started ended p0 p1 a0 a1 rec_bytes=- before_complete status=ok
  before_complete=$(session_records "$t" ResponseComplete exec)
  p0=$(ticks "${proxy_pid[$t]}") a0=$(ticks "$apiserver_pid")
  started=$EPOCHREALTIME
  if ! kube "$v" "$t" exec -n dev web -c app -- head -c "${size_mib}M" /dev/zero >/dev/null 2>"$scratch/exec.err"; then
    status=failed
    say "warning: kubectl $v exec via $t failed: $(head -c 400 "$scratch/exec.err")"
    cat "$scratch/exec.err" >>"$scratch/exec-failures.log"
  fi
  ended=$EPOCHREALTIME
  p1=$(ticks "${proxy_pid[$t]}") a1=$(ticks "$apiserver_pid")
  if [ -n "${proxy_pid[$t]}" ]; then
    # The session's end record says how many bytes the proxy passed: all of them, or it failed.
    if ! wait_until 300 records_at_least "$t" ResponseComplete exec $((before_complete + 1)); then
      say "warning: no end record for the $t session after 300 s"
      status=failed
    elif ! grep -qF "\"portcullis.dev/bytes-out\":\"$size_bytes\"" <(tail -1 "$scratch/audit-$t.jsonl"); then
      say "warning: the $t session's end record does not count $size_bytes bytes out: $(tail -1 "$scratch/audit-$t.jsonl" | grep -o '"annotations".*' | head -c 600)"
      status=failed
    fi
  fi
  if [ -n "${recordings_of[$t]}" ]; then
    rec_bytes=$(du -sb "${recordings_of[$t]}" | cut -f1)
    find "${recordings_of[$t]}" -name '*.cast' -delete
  fi
  record_result exec "$v" "$t" "$run" "$(elapsed "$started" "$ended")" $((p1 - p0)) $((a1 - a0)) "$rec_bytes" "$status"
}

if runs_part exec; then
  say "exec: $repeat × ${size_mib} MiB per kubectl and target"
  for run in $(seq 1 "$repeat"); do
    for v in $kubectl_versions; do
      for t in "${exec_targets[@]}"; do run_exec "$v" "$t" "$run"; done
    done
  done
fi

# --- 5. port-forward throughput ---------------------------------------------------------------------
# The "pod port": a server on 127.0.0.1 that answers any request with SIZE zero bytes (HTTP/1.0,
# Content-Length, then close), written from one preallocated buffer so it costs little CPU.
cat >"$scratch/data-server.py" <<'EOF'
import socket, sys, threading
size, port = int(sys.argv[1]), int(sys.argv[2])
chunk = memoryview(bytes(1 << 20))
def serve(conn):
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size)
        left = size
        while left > 0:
            n = min(left, len(chunk))
            conn.sendall(chunk[:n])
            left -= n
server = socket.create_server(("127.0.0.1", port))
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
EOF
declare -A local_port=() forward_pid=()
if runs_part port-forward; then
  data_port=$(free_port)
  python3 "$scratch/data-server.py" "$size_bytes" "$data_port" >"$scratch/data-server.log" 2>&1 &
  started_pids+=($!)
  wait_for "the data server on port $data_port" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$data_port"

  # One port-forward session per kubectl and target, kept for all repetitions (each download is a
  # new forwarded connection); their local ports are read from kubectl's "Forwarding from" line.
  for v in $kubectl_versions; do
    for t in "${forward_targets[@]}"; do
      log=$scratch/port-forward-$t-$v.log
      kube_exec "$v" "$t" port-forward -n dev pod/web --address 127.0.0.1 ":$data_port" >"$log" 2>&1 &
      started_pids+=($!)
      forward_pid[$t-$v]=$!
      wait_for "kubectl $v port-forward via $t" 30 grep -q 'Forwarding from 127.0.0.1:' "$log"
      local_port[$t-$v]=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -1)
    done
  done

  run_forward() { # kubectl target run
    local v=$1 t=$2 run=$3 p0 p1 a0 a1 answer
    p0=$(ticks "${proxy_pid[$t]}") a0=$(ticks "$apiserver_pid")
    answer=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
      "http://127.0.0.1:${local_port[$t-$v]}/" 2>"$scratch/curl.err") ||
      die "the download through kubectl $v port-forward via $t failed: $(cat "$scratch/curl.err")"
    p1=$(ticks "${proxy_pid[$t]}") a1=$(ticks "$apiserver_pid")
    read -r code bytes seconds <<<"$answer"
    { [ "$code" = 200 ] && [ "$bytes" = "$size_bytes" ]; } ||
      die "kubectl $v port-forward via $t: HTTP $code, $bytes bytes of $size_bytes"
    record_result port-forward "$v" "$t" "$run" "$seconds" $((p1 - p0)) $((a1 - a0)) - ok
  }

  say "port-forward: $repeat × ${size_mib} MiB per kubectl and target"
  for run in $(seq 1 "$repeat"); do
    for v in $kubectl_versions; do
      for t in "${forward_targets[@]}"; do run_forward "$v" "$t" "$run"; done
    done
  done
fi

# --- optional: where Portcullis's time goes -------------------------------------------------------
perf_report=
if [ "$perf_profile" = 1 ] && command -v perf >/dev/null; then
  perf_report=${out%.md}-perf.txt
  : >"$perf_report"
  profile() { # label target command...
    local label=$1 target=$2 perf_pid; shift 2
    say "profiling $target: $label"
    perf record -F 999 -g -o "$scratch/perf.data" -p "${proxy_pid[$target]}" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
    "$@"
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    # `|| true`: head closes the pipe early, which pipefail would otherwise count as a failure.
    {
      echo "== $label: self time by shared object"
      perf report -i "$scratch/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep -v -e '^#' -e '^$' | head -12 || true
      echo "== $label: inclusive time (children), top symbols"
      perf report -i "$scratch/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
        grep -v -e '^#' -e '^$' | head -40 | { swift demangle --simplified 2>/dev/null || cat; } || true
      echo "== $label: hottest symbols (self)"
      perf report -i "$scratch/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        grep -v -e '^#' -e '^$' | head -30 | { swift demangle --simplified 2>/dev/null || cat; } || true
      echo
    } >>"$perf_report"
  }
  for v in $kubectl_versions; do
    if runs_part exec; then
      profile "exec, kubectl $v, recordings on" portcullis run_exec "$v" portcullis perf
      profile "exec, kubectl $v, recordings off" portcullis-norec run_exec "$v" portcullis-norec perf
    fi
    if runs_part port-forward; then profile "port-forward, kubectl $v" portcullis run_forward "$v" portcullis perf; fi
  done
  # The profiled runs are in results.tsv as run "perf"; they are not in the medians.
fi

for key in "${!forward_pid[@]}"; do kill -TERM "${forward_pid[$key]}" 2>/dev/null || true; done

# --- 6. idle interactive sessions -------------------------------------------------------------------
# A fresh proxy (recordings and audit on), so that memory freed by the throughput runs does not
# hide what the sessions take. Every session is `kubectl exec -i web -c app -- sh` with its stdin
# on one FIFO that this script holds open and never writes: idle until the FIFO is closed, which
# ends every shell with an EOF (a clean exit 0).
if runs_part sessions; then
  say "sessions: $sessions idle \`kubectl $session_kubectl exec -i -- sh\` through a fresh portcullis"
  start_portcullis sessions yes
  sessions_pid=${proxy_pid[sessions]}
  # Warm-up: one interactive session, so what every session shares (TLS contexts, the upstream
  # pool, the recorder) is in "before".
  echo 'echo warm' | kube "$session_kubectl" sessions exec -i -n dev web -c app -- sh >/dev/null 2>&1 ||
    die "the warm-up session through portcullis failed"
  warm_started=$(session_records sessions ResponseStarted exec)
  sleep 2
  rss_before=$(rss_kib "$sessions_pid")
  fifo=$scratch/idle-stdin
  rm -f "$fifo" && mkfifo "$fifo"
  exec 7<>"$fifo"
  session_pids=()
  started_at=$SECONDS
  while [ ${#session_pids[@]} -lt "$sessions" ]; do
    batch_end=$(( ${#session_pids[@]} + session_batch ))
    [ "$batch_end" -le "$sessions" ] || batch_end=$sessions
    while [ ${#session_pids[@]} -lt "$batch_end" ]; do
      # 7>&-: the sessions must not hold the FIFO's write end, or closing it would not end them.
      kube_exec "$session_kubectl" sessions exec -i -n dev web -c app -- sh <"$fifo" >/dev/null \
        2>>"$scratch/sessions.err" 7>&- &
      session_pids+=($!)
      started_pids+=($!)
    done
    wait_for "$batch_end sessions to start" 120 records_at_least sessions ResponseStarted exec $((warm_started + batch_end))
  done
  established_after=$((SECONDS - started_at))
  sleep 3
  alive=0
  for pid in "${session_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
  open_sessions=$(( $(session_records sessions ResponseStarted exec) - $(session_records sessions ResponseComplete exec) ))
  rss_open=$(rss_kib "$sessions_pid")
  say "all open: RSS $rss_open KiB; idle for $session_settle s"
  sleep "$session_settle"
  still_open=$(( $(session_records sessions ResponseStarted exec) - $(session_records sessions ResponseComplete exec) ))
  [ "$still_open" = "$open_sessions" ] || die "$((open_sessions - still_open)) sessions ended while idle"
  rss_after=$(rss_kib "$sessions_pid")
  sessions_cpu=$(awk -v t="$(ticks "$sessions_pid")" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
  note_load
  say "$alive kubectls alive, $open_sessions sessions open; RSS $rss_before KiB before, $rss_after KiB idle"
  { [ "$alive" = "$sessions" ] && [ "$open_sessions" = "$sessions" ]; } ||
    die "expected $sessions open sessions, $alive kubectls alive and $open_sessions open in the audit log"
  # The end: close the FIFO; every shell reads EOF and exits 0.
  exec 7>&-
  failed=0
  for pid in "${session_pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  wait_for "every session's end record" 60 records_at_least sessions ResponseComplete exec $((warm_started + sessions))
  sleep 2
  rss_closed=$(rss_kib "$sessions_pid")
  say "sessions ended ($failed non-zero exits); RSS $rss_closed KiB after they closed"
fi
load_at_end=$(load_average)

# --- 7. the report --------------------------------------------------------------------------------
# Medians per kind, kubectl and target (the perf runs excluded), ratios against direct.
table=$(awk -F'\t' -v size="$size_mib" '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  NR == 1 || $4 == "perf" { next }
  {
    key = $1 SUBSEP $2 SUBSEP $3
    if (!(key in seen)) { seen[key] = 1; order[++n] = key; failed[key] = 0 }
    load[key] = load[key] " " $10
    if ($11 != "ok") { failed[key]++; shown[key] = shown[key] " failed(" $5 "s)"; next }
    runs[key] = runs[key] " " $6; shown[key] = shown[key] " " $6
    cpu[key] = cpu[key] " " $7; api[key] = api[key] " " $8
    if ($9 != "-") rec[key] = $9
  }
  END {
    printf "| kind | kubectl | target | MiB/s (median) | runs MiB/s | ×direct | proxy CPU s/GiB | apiserver CPU s/GiB | recording per run | load | target ≥ 0.8× |\n"
    printf "|---|---|---|---:|---|---:|---:|---:|---:|---|---|\n"
    for (i = 1; i <= n; i++) {
      split(order[i], k, SUBSEP)
      m = median(runs[order[i]]); d = median(runs[k[1] SUBSEP k[2] SUBSEP "direct"])
      ratio = d > 0 ? m / d : 0
      gib = size / 1024
      pc = k[3] == "direct" ? "-" : sprintf("%.2f", median(cpu[order[i]]) / gib)
      r = (order[i] in rec) ? sprintf("%.2f GiB", rec[order[i]] / 1073741824) : "-"
      met = k[3] == "direct" ? "-" : (ratio >= 0.8 ? "yes" : "no")
      if (runs[order[i]] == "") met = "no (every run failed)"
      printf "| %s | %s | %s | %.1f | %s | %.2f | %s | %.2f | %s | %s | %s |\n", k[1], k[2], k[3], m,
        substr(shown[order[i]], 2), ratio, pc, median(api[order[i]]) / gib, r, substr(load[order[i]], 2), met
    }
  }' "$results")

session_table="Idle sessions: not measured (BENCH_PARTS)."
if runs_part sessions; then
  per_session=$(awk -v a="$rss_after" -v b="$rss_before" -v n="$sessions" 'BEGIN { printf "%.1f", (a - b) / n }')
  per_session_open=$(awk -v a="$rss_open" -v b="$rss_before" -v n="$sessions" 'BEGIN { printf "%.1f", (a - b) / n }')
  session_met=$(awk -v p="$per_session" 'BEGIN { print (p < 100 ? "yes" : "no") }')
  session_table=$(
    echo "| kubectl | sessions | RSS before KiB | all open (3 s) KiB | per session | idle (${session_settle} s more) KiB | **per idle session** | after they closed KiB | target < 100 KiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    echo "| $session_kubectl | $sessions | $rss_before | $rss_open | $per_session_open | $rss_after | $per_session | $rss_closed | $session_met |"
  )
fi

{
  echo "# Streams benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)." \
    "Load average: $load_at_start at start, up to $load_max during the runs, $load_at_end at the end."
  echo "${size_mib} MiB per transfer, $repeat runs per cell, targets interleaved within each run; the median is reported."
  echo "kube-apiserver v1.20.2 and the node agent (scripts/testenv); bob's bearer token; kubectl 1.33 speaks"
  echo "WebSocket to Portcullis and falls back to SPDY against the 1.20 apiserver (direct)."
  echo "Portcullis: release build, TLS both sides, static token authentication, no policies, audit log on;"
  echo "\`portcullis\` with \`recordings:\` on (asciicast, input off), \`portcullis-norec\` without."
  echo
  echo "exec: \`kubectl exec web -c app -- head -c ${size_mib}M /dev/zero >/dev/null\`, timed from start to exit."
  echo "port-forward: \`kubectl port-forward pod/web :PORT\`, one HTTP/1.0 download of ${size_mib} MiB with curl"
  echo "from a local Python server (the node agent dials 127.0.0.1:PORT); port-forward is not recorded."
  echo
  echo "$table"
  echo
  echo "CPU per GiB: user + system time of the proxy process and of kube-apiserver during the run," \
    "per GiB moved (median of the runs). The recording column is the .cast file one run left."
  echo
  runs_part sessions && echo "Idle interactive sessions: \`kubectl $session_kubectl exec -i web -c app -- sh\`, stdin on an idle FIFO," \
    "through a fresh \`portcullis\` (recordings and audit on) warmed up by one session; started in" \
    "batches of $session_batch, all $sessions open after ${established_after} s (audit ResponseStarted" \
    "records, kubectls alive); proxy CPU $sessions_cpu s in all; $failed sessions ended non-zero."
  echo
  echo "$session_table"
  [ -z "$perf_report" ] || { echo; echo "Profile: $(basename "$perf_report")."; }
} >"$out"

echo
if command -v column >/dev/null; then
  grep -v '^|---' <<<"$table" | sed 's/^| //; s/ |$//' | column -t -s'|'
  echo
  grep -v '^|---' <<<"$session_table" | sed 's/^| //; s/ |$//' | column -t -s'|'
else
  echo "$table"; echo; echo "$session_table"
fi
echo
say "load average: start $load_at_start, max during runs $load_max, end $load_at_end"
say "report: $out"
