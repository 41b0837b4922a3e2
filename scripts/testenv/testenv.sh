#!/usr/bin/env bash
# The Portcullis test cluster: a real etcd, a real kube-apiserver (v1.20.2, built from Debian's
# source package) and a node agent built on the kubelet's own streaming code, all on 127.0.0.1.
#
#   testenv.sh up     [--dir DIR]   start in the background; returns when ready (idempotent)
#   testenv.sh run    [--dir DIR] [--owner-pid PID]
#                                   run in the foreground until SIGTERM/SIGINT (or until PID exits)
#   testenv.sh down   [--dir DIR]   stop what `up` started, by PID
#   testenv.sh status [--dir DIR]   print the state; exit 0 only when ready
#
# `up` and `run` also take `--component NAME=COMMAND` and `--component-port NAME=PORT` (repeatable):
# extra processes (the sandbox's proxy and webhook) started once the cluster is seeded, waited for
# on their port, supervised like the rest and stopped first; and `--apply PATH` (repeatable):
# manifests applied as cluster-admin after the CRDs, before the components start (the sandbox's
# AccessPolicies, so that the proxies' first list already holds them).
#
# DIR (default ./.testenv) receives the PKI, logs, kubeconfigs and cluster.env, which describes the
# running cluster (ports, files, tokens) for tests and for `portcullis sandbox`.
#
# One supervisor process (`run`) is the parent of etcd, kube-apiserver and the node agent: it
# reaps them, so stopping leaves no zombies even where PID 1 does not reap orphans.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cmd=${1:-}; shift || true
dir=$PWD/.testenv
owner_pid=
component_names=()
declare -A component_commands=() component_ports=()
apply_paths=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --owner-pid) owner_pid=$2; shift 2 ;;
    --component)
      name=${2%%=*}
      component_names+=("$name")
      component_commands[$name]=${2#*=}
      shift 2 ;;
    --component-port) component_ports[${2%%=*}]=${2#*=}; shift 2 ;;
    --apply) apply_paths+=("$2"); shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
run_dir=$dir/run
log_dir=$dir/logs
ready_timeout=${TESTENV_READY_TIMEOUT:-90}

# A free TCP port on 127.0.0.1: random, below the kernel's ephemeral range (so no outgoing
# connection takes it between now and the bind), and used by no socket in /proc/net/tcp.
#
# A port chosen here is bound only seconds later, so two pickers running at once (the test cluster
# and a sandbox starting beside it in one test run) could choose the same one. Every picker
# therefore also reserves its port by creating /tmp/portcullis-ports/PORT (mkdir is atomic);
# reservations older than 10 minutes are stale, by then the port is bound or abandoned.
# `portcullis sandbox` reserves its ports the same way.
port_reservations=/tmp/portcullis-ports
reserve_port() {
  mkdir -p "$port_reservations"
  mkdir "$port_reservations/$1" 2>/dev/null && return 0
  if [ -n "$(find "$port_reservations/$1" -maxdepth 0 -mmin +10 2>/dev/null)" ]; then
    rmdir "$port_reservations/$1" 2>/dev/null
    mkdir "$port_reservations/$1" 2>/dev/null && return 0
  fi
  return 1
}

free_port() {
  local port hex low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$low" -gt 21024 ] || low=32768
  while :; do
    port=$(( (RANDOM * 32768 + RANDOM) % (low - 20000) + 20000 ))
    hex=$(printf '%04X' "$port")
    if ! awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
      /proc/net/tcp /proc/net/tcp6 2>/dev/null && reserve_port "$port"; then
      echo "$port"
      return
    fi
  done
}

# State of a PID: "running", "zombie" or "gone".
pid_state() {
  local stat
  stat=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || { echo gone; return; }
  case "$stat" in Z | X) echo zombie ;; *) echo running ;; esac
}

supervisor_running() {
  [ -f "$run_dir/supervisor.pid" ] && [ "$(pid_state "$(cat "$run_dir/supervisor.pid")")" = running ]
}

random_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# --- PKI ------------------------------------------------------------------------------------------
gen_pki() {
  local pki=$dir/pki
  rm -rf "$pki" && mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=portcullis-test-ca" 2>/dev/null
    # name, subject, subjectAltName (or "")
    issue() {
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      { [ -n "$3" ] && echo "subjectAltName=$3"; echo "extendedKeyUsage=serverAuth,clientAuth"; } >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    issue apiserver "/CN=kube-apiserver" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:10.96.0.1"
    issue node-agent "/CN=system:node:node-1" "IP:127.0.0.1,DNS:localhost"
    issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" ""
    issue admin "/O=system:masters/CN=admin" ""
    issue portcullis-proxy "/O=portcullis/CN=portcullis-proxy" ""
    issue alice "/O=developers/CN=alice" ""
    issue bob "/O=sre/CN=bob" ""
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  # token,user,uid,"group1,group2" (the apiserver's --token-auth-file format)
  {
    echo "$ADMIN_TOKEN,admin,admin-uid,\"system:masters\""
    echo "$PROXY_TOKEN,portcullis-proxy,portcullis-proxy-uid,\"portcullis\""
    echo "$ALICE_TOKEN,alice,alice-uid,\"developers\""
    echo "$BOB_TOKEN,bob,bob-uid,\"sre\""
    echo "$CAROL_TOKEN,carol,carol-uid,\"\""
  } >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki/tokens.csv"
}

kubeconfig() { # file user token
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: portcullis-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $dir/pki/ca.crt
contexts:
- name: $2
  context: {cluster: portcullis-test, user: $2}
current-context: $2
users:
- name: $2
  user:
    token: $3
EOF
  chmod 600 "$1"
}

# --- cluster objects ------------------------------------------------------------------------------
kubectl_admin() { HOME=$dir "$(kubectl_120_bin)" --kubeconfig "$dir/admin.kubeconfig" "$@"; }

admin_api() { # method path [json]
  curl -sS --fail-with-body --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -X "$1" "https://127.0.0.1:$APISERVER_PORT$2" ${3:+-H "Content-Type: application/merge-patch+json" --data "$3"}
}

seed_cluster() {
  kubectl_admin apply -f "$here/cluster.yaml" >"$log_dir/seed.log"
  # Portcullis's own resource types, so tests and the sandbox can create policies and requests.
  kubectl_admin apply -f "$here/../../manifests/crds" >>"$log_dir/seed.log"
  kubectl_admin apply -f - >>"$log_dir/seed.log" <<EOF
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {kubernetes.io/hostname: node-1, kubernetes.io/os: linux}
status:
  addresses: [{type: InternalIP, address: 127.0.0.1}, {type: Hostname, address: node-1}]
  daemonEndpoints: {kubeletEndpoint: {Port: $NODE_AGENT_PORT}}
  conditions: [{type: Ready, status: "True", reason: KubeletReady, message: "portcullis node agent"}]
EOF
  # Pods are created bound to node-1; no kubelet reports their status, so mark them Running here.
  local ns pod
  for ns in dev prod; do
    for pod in web; do
      admin_api PATCH "/api/v1/namespaces/$ns/pods/$pod/status" \
        '{"status":{"phase":"Running","hostIP":"127.0.0.1","podIP":"127.0.0.1","conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"app","ready":true,"restartCount":0,"image":"portcullis/local","imageID":"","started":true,"state":{"running":{}}},{"name":"sidecar","ready":true,"restartCount":0,"image":"portcullis/local","imageID":"","started":true,"state":{"running":{}}}]}}' \
        >>"$log_dir/seed.log"
    done
  done
}

write_env() {
  cat >"$dir/cluster.env.tmp" <<EOF
# Written by scripts/testenv/testenv.sh; describes the running test cluster.
TESTENV_DIR=$dir
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
APISERVER_PORT=$APISERVER_PORT
ETCD_PORT=$ETCD_PORT
NODE_AGENT_PORT=$NODE_AGENT_PORT
NODE_NAME=node-1
CA_FILE=$dir/pki/ca.crt
ADMIN_KUBECONFIG=$dir/admin.kubeconfig
ADMIN_TOKEN=$ADMIN_TOKEN
PROXY_TOKEN=$PROXY_TOKEN
ALICE_TOKEN=$ALICE_TOKEN
BOB_TOKEN=$BOB_TOKEN
CAROL_TOKEN=$CAROL_TOKEN
PKI_DIR=$dir/pki
APISERVER_AUDIT_LOG=$log_dir/apiserver-audit.jsonl
KUBECTL_1_20=$(kubectl_120_bin)
NODE_AGENT_BIN=$(agent_bin)
SUPERVISOR_PID=$$
EOF
  mv "$dir/cluster.env.tmp" "$dir/cluster.env"
}

# --- the supervisor -------------------------------------------------------------------------------
declare -A pids=()

start_component() { # name command...
  local name=$1; shift
  "$@" >"$log_dir/$name.log" 2>&1 &
  pids[$name]=$!
  echo "${pids[$name]}" >"$run_dir/$name.pid"
}

stop_component() {
  local name=$1 pid=${pids[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 100); do [ "$(pid_state "$pid")" = running ] || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "pids[$name]"
  rm -f "$run_dir/$name.pid"
}

stop_all() {
  # Extra components first (they talk to the apiserver), then the apiserver (it needs etcd to
  # shut down cleanly), etcd last.
  local name
  for name in "${component_names[@]}"; do stop_component "$name"; done
  stop_component node-agent
  stop_component apiserver
  stop_component etcd
  rm -f "$dir/cluster.env" "$run_dir/ready" "$run_dir/supervisor.pid"
}

wait_until() { # description seconds command...
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    local name
    for name in "${!pids[@]}"; do
      if [ "$(pid_state "${pids[$name]}")" != running ]; then
        tail -20 "$log_dir/$name.log" >&2
        die "$name exited while waiting for $what; log: $log_dir/$name.log"
      fi
    done
    [ $SECONDS -lt $deadline ] || die "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apiserver_ready() {
  curl -sf --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$APISERVER_PORT/readyz"
}

run() {
  if supervisor_running; then
    die "a test cluster is already running in $dir (supervisor $(cat "$run_dir/supervisor.pid"))"
  fi
  rm -rf "$run_dir" "$log_dir" "$dir/etcd-data" "$dir/containers"
  mkdir -p "$run_dir" "$log_dir"
  echo $$ >"$run_dir/supervisor.pid"
  trap 'stop_all' EXIT
  trap 'exit 0' TERM INT

  [ -x "$(apiserver_bin)" ] && [ -x "$(agent_bin)" ] && [ -x "$(kubectl_120_bin)" ] || bash "$here/build.sh" all
  command -v etcd >/dev/null || die "etcd is not installed (run scripts/testenv/build.sh deps)"

  ADMIN_TOKEN=$(random_token) PROXY_TOKEN=$(random_token) ALICE_TOKEN=$(random_token)
  BOB_TOKEN=$(random_token) CAROL_TOKEN=$(random_token)
  ETCD_PORT=$(free_port) ETCD_PEER_PORT=$(free_port) APISERVER_PORT=$(free_port) NODE_AGENT_PORT=$(free_port)
  gen_pki
  kubeconfig "$dir/admin.kubeconfig" admin "$ADMIN_TOKEN"
  kubeconfig "$dir/alice.kubeconfig" alice "$ALICE_TOKEN"
  kubeconfig "$dir/bob.kubeconfig" bob "$BOB_TOKEN"
  kubeconfig "$dir/proxy.kubeconfig" portcullis-proxy "$PROXY_TOKEN"

  local t0=$SECONDS
  start_component etcd etcd --name portcullis-test --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "portcullis-test=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
  wait_until etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  # --disable-admission-plugins=ServiceAccount: no controller-manager creates the "default" SA.
  # --endpoint-reconciler-type=none: Endpoints may not hold 127.0.0.1.
  # --allow-privileged=true, as kubeadm and kind set it: refusing privileged pods is admission's job.
  start_component apiserver "$(apiserver_bin)" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" --insecure-port=0 \
    --tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key" \
    --client-ca-file="$dir/pki/ca.crt" --token-auth-file="$dir/pki/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" --api-audiences=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/12 --authorization-mode=Node,RBAC \
    --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP \
    --kubelet-certificate-authority="$dir/pki/ca.crt" \
    --kubelet-client-certificate="$dir/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$dir/pki/apiserver-kubelet-client.key" \
    --audit-policy-file="$here/audit-policy.yaml" --audit-log-path="$log_dir/apiserver-audit.jsonl" \
    --audit-log-maxsize=200 --audit-log-maxbackup=1
  start_component node-agent "$(agent_bin)" --listen "127.0.0.1:$NODE_AGENT_PORT" \
    --tls-cert "$dir/pki/node-agent.crt" --tls-key "$dir/pki/node-agent.key" \
    --client-ca "$dir/pki/ca.crt" --root "$dir/containers"
  wait_until kube-apiserver "$ready_timeout" apiserver_ready
  wait_until "the node agent" 30 curl -sf --cacert "$dir/pki/ca.crt" "https://127.0.0.1:$NODE_AGENT_PORT/healthz"
  seed_cluster
  kubectl_admin wait --for condition=established --timeout=30s \
    crd/accesspolicies.portcullis.dev crd/accessrequests.portcullis.dev >>"$log_dir/seed.log"
  local path
  for path in "${apply_paths[@]}"; do
    kubectl_admin apply -f "$path" >>"$log_dir/seed.log" 2>&1 || die "applying $path failed; log: $log_dir/seed.log"
  done
  local name
  for name in "${component_names[@]}"; do
    start_component "$name" bash -c "${component_commands[$name]}"
    if [ -n "${component_ports[$name]:-}" ]; then
      wait_until "$name" 60 port_open "${component_ports[$name]}"
    fi
  done
  write_env
  touch "$run_dir/ready"
  log "ready in $((SECONDS - t0))s: kubectl --kubeconfig $dir/admin.kubeconfig get ns"

  # Supervise: stop when told to, when the owner exits, or (loudly) when a component dies.
  while :; do
    local name
    for name in "${!pids[@]}"; do
      if [ "$(pid_state "${pids[$name]}")" != running ]; then
        log "error: $name exited unexpectedly; log: $log_dir/$name.log"
        tail -5 "$log_dir/$name.log" >&2
        echo "$name exited" >"$run_dir/failed"
        exit 1
      fi
    done
    if [ -n "$owner_pid" ] && [ "$(pid_state "$owner_pid")" != running ]; then
      log "owner $owner_pid exited; stopping"
      exit 0
    fi
    sleep 0.5 &
    wait $! || true
  done
}

up() {
  local passthrough=() name
  for name in "${component_names[@]}"; do
    passthrough+=(--component "$name=${component_commands[$name]}")
    [ -n "${component_ports[$name]:-}" ] && passthrough+=(--component-port "$name=${component_ports[$name]}")
  done
  local path
  for path in "${apply_paths[@]}"; do passthrough+=(--apply "$path"); done
  if supervisor_running; then
    if [ -f "$run_dir/ready" ]; then
      log "already running in $dir"
      echo "$dir/admin.kubeconfig"
      return 0
    fi
  else
    rm -f "$run_dir/ready" "$run_dir/failed"
    mkdir -p "$run_dir"
    # setsid: the cluster must not die with the caller's terminal or process group. Descriptors
    # inherited from the caller are closed, or a caller waiting for its child's pipes or sockets
    # to close (Foundation's Process does) would wait as long as the cluster runs.
    (
      for fd in /proc/self/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
      done
      exec setsid nohup bash "$here/testenv.sh" run --dir "$dir" "${passthrough[@]}" >"$dir/supervisor.log" 2>&1 </dev/null
    ) &
  fi
  local deadline=$((SECONDS + ready_timeout + 600)) # + a first build of the apiserver
  until [ -f "$run_dir/ready" ]; do
    if [ $SECONDS -ge 3 ] && ! supervisor_running; then
      tail -20 "$dir/supervisor.log" >&2
      die "the test cluster failed to start; log: $dir/supervisor.log"
    fi
    [ $SECONDS -lt $deadline ] || die "timed out waiting for the test cluster; log: $dir/supervisor.log"
    sleep 0.2
  done
  log "admin kubeconfig: $dir/admin.kubeconfig"
  echo "$dir/admin.kubeconfig"
}

down() {
  if ! supervisor_running; then
    log "no test cluster is running in $dir"
    return 0
  fi
  local pid
  pid=$(cat "$run_dir/supervisor.pid")
  kill -TERM "$pid"
  local i
  for i in $(seq 300); do [ "$(pid_state "$pid")" = running ] || break; sleep 0.1; done
  [ "$(pid_state "$pid")" != running ] || die "supervisor $pid did not stop within 30s"
  log "stopped the test cluster in $dir"
}

status() {
  if ! supervisor_running; then
    echo "stopped ($dir)"
    [ -f "$run_dir/failed" ] && echo "last run failed: $(cat "$run_dir/failed")"
    return 3
  fi
  if [ ! -f "$run_dir/ready" ]; then
    echo "starting ($dir)"
    return 4
  fi
  . "$dir/cluster.env"
  local pidfile name
  for pidfile in "$run_dir"/*.pid; do
    name=$(basename "$pidfile" .pid)
    [ "$name" = supervisor ] || printf '%-11s pid %s\n' "$name" "$(cat "$pidfile")"
  done
  echo "apiserver   $APISERVER_URL ($(apiserver_ready || echo 'not ready'))"
  echo "kubeconfig  $ADMIN_KUBECONFIG"
}

case "$cmd" in
  up) up ;;
  run) run ;;
  down) down ;;
  status) status ;;
  *) die "usage: testenv.sh up|run|down|status [--dir DIR] [--owner-pid PID]" ;;
esac
