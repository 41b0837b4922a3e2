#!/usr/bin/env bash
# The KubeProxy benchmark: what does putting Portcullis in front of the apiserver cost a client?
#
# In one run, against one local apiserver (scripts/testenv), it measures GET of one pod and GET of a
# 500-item ConfigMap list, at 1, 16 and 64 concurrent clients (wrk), through three targets:
#
#   direct        the apiserver itself, TLS, alice's bearer token: the floor
#   kubectl-proxy `kubectl proxy` 1.33 as alice: Go's reverse proxy, the baseline users know
#                 (HTTP towards the client, TLS towards the apiserver)
#   portcullis    `portcullis proxy` built in release, TLS on both sides, alice's bearer token,
#                 100 AccessPolicies (300 rules, some of which evaluate on every benchmarked
#                 request) and the audit log on: the configuration the target is stated for
#
# The target (from the KubeProxy issue): Portcullis matches kubectl proxy's requests/s at every
# concurrency and adds no more p50 latency over direct than kubectl proxy does.
#
#   scripts/benchmark-proxy.sh                         # the full run (about 8 minutes after the build)
#   BENCH_DURATION=3s BENCH_WARMUP=1s scripts/benchmark-proxy.sh   # a smoke run, under 3 minutes
#
# Settings (environment):
#   BENCH_DURATION     measured wrk run per cell (default 10s)
#   BENCH_WARMUP       unmeasured wrk run before each cell (default 2s)
#   BENCH_CLIENTS      concurrencies (default "1 16 64")
#   BENCH_VARIANTS     extra Portcullis configurations measured beside the full one, to see where
#                      its time goes: any of noaudit (policies, no audit file), nopolicies (audit,
#                      no policies), bare (neither). Default: none. Note: without an audit path
#                      the proxy still builds each audit event's JSON and drops it, so noaudit
#                      shows the cost of the file write only, not of the event (see the profile).
#   BENCH_PERF         1: after the matrix, profile the full Portcullis with `perf record` and
#                      write the hottest symbols next to the report
#   BENCH_PERF_CLIENTS concurrency of the profiled run (default 16)
#   BENCH_SCRATCH      working directory (cluster, policies, logs); default a fresh mktemp dir,
#                      kept afterwards for inspection
#   BENCH_SKIP_BUILD   1: use the existing release binary
#   BENCH_OUT          the Markdown report (default .build/benchmarks/proxy-<date>.md)
#
# The machine is usually shared, so absolute numbers move with its load; the load average is
# recorded with every cell, targets are interleaved within each cell (so a burst of load hits all
# of them alike), and the ratios against direct and kubectl proxy are what to compare.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
clients=${BENCH_CLIENTS:-"1 16 64"}
variants=${BENCH_VARIANTS:-}
perf_profile=${BENCH_PERF:-0}
perf_clients=${BENCH_PERF_CLIENTS:-16}
scratch=${BENCH_SCRATCH:-$(mktemp -d /tmp/portcullis-bench.XXXXXX)}
stamp=$(date +%Y%m%d-%H%M%S)
out=${BENCH_OUT:-$root/.build/benchmarks/proxy-$stamp.md}
kubectl_baseline=${BENCH_KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.33}
mkdir -p "$scratch" "$(dirname "$out")"
scratch=$(cd "$scratch" && pwd)

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }
sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
load_average() { cut -d' ' -f1-3 /proc/loadavg; }

load_at_start=$(load_average)
say "scratch: $scratch (load average $load_at_start on $(nproc) cores)"

# --- 1. tools and the release build -------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  # --no-upgrade: install the load generator without moving anything else on a shared machine.
  say "installing wrk"
  sudo_if_needed apt-get install -y --no-upgrade wrk >/dev/null ||
    { sudo_if_needed apt-get update >/dev/null && sudo_if_needed apt-get install -y --no-upgrade wrk >/dev/null; }
fi
[ -x "$kubectl_baseline" ] || die "the baseline kubectl ($kubectl_baseline) is missing; set BENCH_KUBECTL"

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
  [ $status = 0 ] || say "failed; logs in $scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the test cluster"
bash "$root/scripts/testenv/testenv.sh" up --dir "$scratch/cluster" >/dev/null
# shellcheck disable=SC1091
. "$scratch/cluster/cluster.env"
apiserver_pid=$(cat "$TESTENV_DIR/run/apiserver.pid")
kubectl_admin() { HOME=$scratch "$KUBECTL_1_20" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

# A free port on 127.0.0.1 (below the ephemeral range, so no outgoing connection takes it).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
wait_for() { # description seconds command...
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what"
    sleep 0.2
  done
}

# --- 3. seed: a pod, 500 ConfigMaps, and alice's access in `bench` -----------------------------
say "seeding namespace bench (1 pod, 500 ConfigMaps)"
pod=checkout-api-6d9f8b7c4-x2k9p
{
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: bench, labels: {env: bench, team: checkout}}
---
# Read access for the benchmark identity (alice, group developers) where the benchmark reads.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: bench-reader, namespace: bench}
rules:
- {apiGroups: [""], resources: [pods, configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: developers-read, namespace: bench}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: bench-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}]
---
# A pod shaped like a real Deployment's (about 3 KB of JSON): the single-object GET.
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  namespace: bench
  labels: {app: checkout-api, team: checkout, pod-template-hash: 6d9f8b7c4, version: v2.14.3}
  annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9090", kubectl.kubernetes.io/default-container: app}
spec:
  nodeName: node-1
  containers:
  - name: app
    image: registry.example.com/checkout/api:v2.14.3
    args: [--config=/etc/checkout/application.yaml, --port=8080]
    ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]
    env:
    - {name: LOG_LEVEL, value: info}
    - {name: DB_HOST, value: checkout-db.bench.svc.cluster.local}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: "1", memory: 512Mi}}
    readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 5}
    livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 10}
    volumeMounts: [{name: config, mountPath: /etc/checkout}]
  - name: envoy
    image: registry.example.com/mesh/envoy:v1.29.1
    ports: [{name: admin, containerPort: 15000}]
    resources: {requests: {cpu: 100m, memory: 64Mi}}
  volumes:
  - {name: config, configMap: {name: svc-000-config}}
EOF
  # 500 ConfigMaps like an application's settings, about 1.2 KB each as served (managedFields
  # included): the list is about 630 KB of JSON, big enough that copying and encryption dominate
  # over per-request overhead. The pod is about 6 KB, where per-request overhead dominates.
  teams=(checkout payments search billing identity)
  for i in $(seq 0 499); do
    n=$(printf '%03d' "$i")
    cat <<EOF
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: svc-$n-config
  namespace: bench
  labels: {app: svc-$n, team: ${teams[$((i % 5))]}, app.kubernetes.io/managed-by: helm}
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "new-checkout-flow=$((i % 2)),async-payments=1,search-v2=$((i % 3 == 0))"
  application.yaml: |
    server:
      port: 8080
      shutdownGracePeriod: 30s
    database:
      host: svc-$n-db.bench.svc.cluster.local
      pool: {min: 2, max: $((10 + i % 20))}
    cache:
      ttl: $((60 + i))s
    upstreams:
      payments: http://payments.bench.svc:8080
      inventory: http://inventory.bench.svc:8080
EOF
  done
} >"$scratch/seed.yaml"
kubectl_admin create -f "$scratch/seed.yaml" >"$scratch/seed.log"

# --- 4. policies, certificates, the proxy configurations ----------------------------------------
# 100 AccessPolicies, 300 rules, ten teams × ten kinds of policy, written the way platform teams
# write them. Two kinds (20 policies, 60 rules) match alice's reads in `bench`, so the engine
# really evaluates CEL on every benchmarked request; none of their rules is true for them (the
# Allow rule is, and allows). The others match other namespaces, subjects, verbs or resources and
# must be ruled out by the index or the match, as in a real cluster.
say "generating 100 policies"
policies=$scratch/policies
rm -rf "$policies" && mkdir -p "$policies"
# One template per kind, with @T@ for the team: quoted heredocs keep CEL's backslashes intact.
policy_template() {
  case $1 in
  0) cat <<'EOF' # 3 rules; matches the benchmarked requests
# @T@ developers read workloads and configuration in their namespaces and in bench.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-readers}
spec:
  match:
    subjects: [{group: developers}, {group: "@T@-oncall"}]
    namespaces: ["bench", "@T@-*"]
    resources: ["pods", "configmaps", "services"]
    verbs: ["get", "list", "watch"]
  matchConditions:
  - {name: not-break-glass, expression: "!('break-glass' in request.user.groups)"}
  rules:
  - name: developers-may-read
    action: Allow
    expression: "request.user.groups.exists(g, g == 'developers' || g.endsWith('-oncall'))"
  - name: no-system-configmaps
    action: Deny
    expression: "request.resource.resource == 'configmaps' && request.name.startsWith('kube-')"
    message: system ConfigMaps are managed by the platform team
  - name: agents-do-not-list-configuration
    action: Deny
    expression: "request.user.name.startsWith('agent-') && request.verb == 'list' && request.resource.resource == 'configmaps'"
    messageExpression: "'agents may read single ConfigMaps in ' + request.namespace + ', not list them'"
EOF
  ;;
  1) cat <<'EOF' # 3 rules
# Destructive commands in @T@'s production containers are refused.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-prod-exec-guardrails}
spec:
  match:
    namespaces: ["prod-@T@", "prod-@T@-*"]
    resources: ["pods/exec", "pods/attach"]
  variables:
  - {name: line, expression: "exec.line != '' ? exec.line : exec.command.join(' ')"}
  rules:
  - name: no-recursive-delete
    action: Deny
    expression: variables.line.matches('\\brm\\s+(\\S+\\s+)*(-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)(\\s|$)')
    message: recursive deletes are blocked in production
  - name: no-credential-reads
    action: Deny
    expression: variables.line.matches('(/etc/shadow|/var/run/secrets/kubernetes\\.io|\\.aws/credentials)')
    message: reading credentials from a production container is blocked
  - name: warn-on-package-installs
    action: Warn
    expression: variables.line.matches('\\b(apt-get|apk|yum|pip)\\s+install\\b')
    message: packages installed in a running container do not survive a restart
EOF
  ;;
  2) cat <<'EOF' # 2 rules
# Secret values in @T@'s namespaces are masked except for the platform team.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-secret-masking}
spec:
  match:
    namespaces: ["@T@-*", "prod-@T@"]
    resources: ["secrets"]
    verbs: ["get", "list", "watch"]
  rules:
  - name: hide-secret-values
    action: Mask
    expression: "!request.user.groups.exists(g, g == 'platform-admins')"
    mask: {fields: ["data.*", "stringData.*"]}
  - name: agents-do-not-watch-secrets
    action: Deny
    expression: "request.verb == 'watch' && request.user.name.startsWith('agent-')"
    message: agents may not watch Secrets
EOF
  ;;
  3) cat <<'EOF' # 4 rules
# Workloads in @T@'s namespaces carry ownership labels and stay off the host.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-workload-standards}
spec:
  match:
    namespaces: ["@T@-*", "prod-@T@"]
    resources: ["deployments.apps", "statefulsets.apps", "pods"]
    operations: [CREATE, UPDATE]
  matchConditions:
  - {name: not-a-controller, expression: "!request.user.name.startsWith('system:')"}
  rules:
  - name: team-label-required
    action: Deny
    expression: "!has(object.metadata.labels) || !('team' in object.metadata.labels)"
    message: workloads need a team label
  - name: no-host-network
    action: Deny
    expression: "has(object.spec.hostNetwork) && object.spec.hostNetwork == true"
    message: pods may not use the node's network
  - name: no-default-namespace
    action: Deny
    expression: "request.namespace == 'default'"
    message: deploy into the team's namespace, not default
  - name: cost-center-label
    action: Warn
    expression: "!has(object.metadata.labels) || !('cost-center' in object.metadata.labels)"
    message: add a cost-center label so the spend is attributed
EOF
  ;;
  4) cat <<'EOF' # 3 rules
# Database shells in @T@'s data namespaces need a second pair of eyes.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-database-approval}
spec:
  match:
    namespaces: ["data-@T@", "prod-@T@"]
    resources: ["pods/exec"]
  variables:
  - {name: line, expression: "exec.line != '' ? exec.line : exec.command.join(' ')"}
  rules:
  - name: psql-needs-approval
    action: Review
    expression: variables.line.matches('^\\s*psql\\b')
    message: psql in production needs approval
    review: {approvers: {groups: [sre]}, grantFor: 1h}
  - name: mysql-needs-approval
    action: Review
    expression: variables.line.matches('^\\s*mysql\\b')
    message: mysql in production needs approval
    review: {approvers: {groups: [sre, dba]}, grantFor: 30m}
  - name: no-interactive-redis-flush
    action: Deny
    expression: exec.tty && variables.line.matches('(?i)flushall')
    message: FLUSHALL is not allowed interactively
EOF
  ;;
  5) cat <<'EOF' # 3 rules
# @T@'s CI deploys into its namespaces but never deletes in production.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-ci-deployers}
spec:
  match:
    subjects: [{serviceAccount: "ci/@T@-deployer"}, {user: "ci-bot"}]
    namespaces: ["@T@-*", "prod-@T@"]
    resources: ["deployments.apps", "configmaps", "services"]
    verbs: ["create", "update", "patch", "delete"]
  rules:
  - name: no-deletes-in-prod
    action: Deny
    expression: "request.verb == 'delete' && request.namespace.startsWith('prod')"
    message: CI may not delete in production
  - name: ci-may-deploy
    action: Allow
    expression: "request.resource.group == 'apps' || request.resource.resource != 'secrets'"
  - name: no-system-configmaps
    action: Deny
    expression: "request.resource.resource == 'configmaps' && request.name.startsWith('kube-')"
    message: system ConfigMaps are managed by the platform team
EOF
  ;;
  6) cat <<'EOF' # 2 rules
# Break-glass access to @T@'s production, recorded while the team tunes it.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-break-glass}
spec:
  mode: Audit
  match:
    subjects: [{group: sre}, {group: "@T@-oncall"}]
    namespaces: ["prod-@T@"]
    resources: ["pods/exec", "pods/portforward"]
  rules:
  - name: break-glass-only
    action: Deny
    expression: "!('break-glass' in request.user.groups)"
    message: production shells need the break-glass group
  - name: port-forwards-are-noted
    action: Warn
    expression: "request.subresource == 'portforward'"
    message: port-forward into production noted
EOF
  ;;
  7) cat <<'EOF' # 4 rules
# AI agents working for @T@ read freely but change nothing sensitive without a person.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-agent-guardrails}
spec:
  match:
    subjects: [{user: "agent-@T@-*"}]
  rules:
  - name: agents-no-secrets
    action: Deny
    expression: "request.resource.resource == 'secrets'"
    message: agents may not read Secrets
  - name: agents-no-deletes
    action: Deny
    expression: "request.verb in ['delete', 'deletecollection']"
    message: agents may not delete
  - name: agents-exec-in-prod-needs-approval
    action: Review
    expression: "request.subresource == 'exec' && request.namespace.startsWith('prod')"
    message: an agent's shell in production needs approval
    review: {approvers: {groups: ["@T@-oncall"]}, grantFor: 15m}
  - name: agents-writes-are-flagged
    action: Warn
    expression: "request.verb in ['create', 'update', 'patch']"
    message: change made by an agent
EOF
  ;;
  8) cat <<'EOF' # 3 rules
# Port-forwards into @T@'s namespaces: no SSH, databases only for DBAs.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-port-forward-limits}
spec:
  match:
    namespaces: ["@T@-*", "prod-@T@"]
    resources: ["pods/portforward"]
  rules:
  - name: no-ssh
    action: Deny
    expression: "portForward.port == 22"
    message: SSH through port-forward is not allowed
  - name: databases-for-dbas
    action: Deny
    expression: "portForward.port in [5432, 3306, 27017] && !('dba' in request.user.groups)"
    message: database ports are for the dba group
  - name: privileged-ports-noted
    action: Warn
    expression: "portForward.port < 1024"
    message: forwarding a privileged port
EOF
  ;;
  9) cat <<'EOF' # 3 rules; matches the benchmarked requests (Audit mode: records, never blocks)
# Staged roll-out of @T@'s read restrictions: recorded, not yet enforced.
apiVersion: portcullis.dev/v1alpha1
kind: AccessPolicy
metadata: {name: @T@-read-restrictions}
spec:
  mode: Audit
  failurePolicy: Ignore
  match:
    namespaces: ["bench", "@T@-*"]
    resources: ["pods", "pods/log", "configmaps"]
    verbs: ["get", "list"]
  rules:
  - name: no-vault-objects
    action: Deny
    expression: "request.name.matches('^(vault|secrets?)-')"
    message: vault configuration is for the platform team
  - name: no-unaffiliated-users
    action: Deny
    expression: "request.user.groups.size() == 0"
    message: users without a team may not read here
  - name: no-service-accounts-from-other-namespaces
    action: Deny
    expression: "request.user.name.startsWith('system:serviceaccount:') && !request.user.name.startsWith('system:serviceaccount:' + request.namespace + ':')"
    message: service accounts read only their own namespace
EOF
  ;;
  esac
}
teams=(checkout payments search billing identity ml data mobile web infra)
for t in $(seq 0 9); do
  for kind in $(seq 0 9); do
    text=$(policy_template "$kind" | sed "s/@T@/${teams[$t]}/g")
    name=$(sed -n 's/^metadata: {name: \(.*\)}$/\1/p' <<<"$text")
    printf '%s\n' "$text" >"$policies/$name.yaml"
  done
done
rule_count=$(grep -c '^  - name:' "$policies"/*.yaml | awk -F: '{ n += $2 } END { print n }')
[ "$(ls "$policies" | wc -l)" = 100 ] && [ "$rule_count" = 300 ] ||
  die "expected 100 policies with 300 rules, generated $(ls "$policies" | wc -l) with $rule_count"
"$portcullis" policy lint "$policies" >"$scratch/lint.log" 2>&1 ||
  { cat "$scratch/lint.log" >&2; die "the generated policies do not lint"; }

# The policy engine's own verdict on the benchmarked requests: allowed by a rule (so the rules
# were evaluated), and a neighbour request that the same policies refuse (so they are live).
cat >"$scratch/policy-test.yaml" <<EOF
apiVersion: portcullis.dev/v1alpha1
kind: PolicyTest
metadata: {name: benchmark}
policies: [$policies]
defaultOutcome: Allow
cases:
- name: alice may get the benchmark pod
  request: {user: {name: alice, groups: [developers]}, verb: get, resource: pods, namespace: bench, name: $pod}
  expect: {outcome: Allow, rule: billing-readers/developers-may-read}
- name: alice may list the benchmark ConfigMaps
  request: {user: {name: alice, groups: [developers]}, verb: list, resource: configmaps, namespace: bench}
  expect: {outcome: Allow, rule: billing-readers/developers-may-read}
- name: an agent may not list them
  request: {user: {name: agent-ml-7, groups: [developers]}, verb: list, resource: configmaps, namespace: bench}
  expect: {outcome: Deny, rule: billing-readers/agents-do-not-list-configuration}
EOF
"$portcullis" policy test "$scratch/policy-test.yaml" >"$scratch/policy-test.log" 2>&1 ||
  { cat "$scratch/policy-test.log" >&2; die "the generated policies do not decide the benchmarked requests as expected"; }

"$portcullis" certs --ip 127.0.0.1 --out "$scratch/proxy-pki" >/dev/null

# One configuration per Portcullis target: "full" is the one the target is stated for; the
# variants take audit or policies away to show what each costs.
proxy_config() { # name policies(yes|no) audit(yes|no) port
  cat <<EOF
listen: {host: 127.0.0.1, port: $4}
tls: {certFile: $scratch/proxy-pki/tls.crt, keyFile: $scratch/proxy-pki/tls.key}
upstream: {kubeconfig: $TESTENV_DIR/proxy.kubeconfig}
policies: {paths: [$([ "$2" = yes ] && echo "$policies")], defaultOutcome: Allow}
authentication: {staticTokenFile: $PKI_DIR/tokens.csv}
EOF
  [ "$3" = yes ] && echo "audit: {path: $scratch/audit-$1.jsonl}"
  return 0
}

declare -A target_url=() target_pid=() target_auth=()
targets=(direct kubectl-proxy portcullis)
target_url[direct]=$APISERVER_URL
target_auth[direct]=$ALICE_TOKEN
target_pid[direct]=

start_portcullis() { # name policies audit
  local name=$1 port
  port=$(free_port)
  proxy_config "$name" "$2" "$3" "$port" >"$scratch/proxy-$name.yaml"
  "$portcullis" proxy --config "$scratch/proxy-$name.yaml" >"$scratch/proxy-$name.log" 2>&1 &
  started_pids+=($!)
  target_pid[$name]=$!
  target_url[$name]=https://127.0.0.1:$port
  target_auth[$name]=$ALICE_TOKEN
  wait_for "$name on port $port" 60 curl -skf -H "Authorization: Bearer $ALICE_TOKEN" \
    "https://127.0.0.1:$port/api/v1/namespaces/bench/pods/$pod"
}
say "starting portcullis proxy (release, 100 policies, audit on)"
start_portcullis portcullis yes yes
for variant in $variants; do
  case $variant in
    noaudit) start_portcullis portcullis-noaudit yes no ;;
    nopolicies) start_portcullis portcullis-nopolicies no yes ;;
    bare) start_portcullis portcullis-bare no no ;;
    *) die "unknown variant $variant (noaudit, nopolicies, bare)" ;;
  esac
  targets+=("portcullis-$variant")
done

# --- 5. the Go baseline ---------------------------------------------------------------------------
# kubectl proxy's Go transport asks the apiserver for gzip when its client did not (wrk does not)
# and inflates the answer itself, so on the 630 KB list the apiserver compresses for this target
# only. That is what the baseline does for a client like wrk; the report shows it in the
# apiserver's CPU per request.
say "starting kubectl proxy ($("$kubectl_baseline" version --client 2>/dev/null | head -1))"
kport=$(free_port)
# HOME: kubectl's discovery cache goes to the scratch directory, not the user's.
HOME=$scratch "$kubectl_baseline" proxy --port "$kport" --kubeconfig "$TESTENV_DIR/alice.kubeconfig" \
  >"$scratch/kubectl-proxy.log" 2>&1 &
started_pids+=($!)
target_pid[kubectl-proxy]=$!
target_url[kubectl-proxy]=http://127.0.0.1:$kport
target_auth[kubectl-proxy]=
wait_for "kubectl proxy on port $kport" 30 curl -sf "http://127.0.0.1:$kport/api/v1/namespaces/bench/pods/$pod"

# --- 6. the measurements --------------------------------------------------------------------------
declare -A path_of=(
  [pod]=/api/v1/namespaces/bench/pods/$pod
  [list500]=/api/v1/namespaces/bench/configmaps
)
paths=(pod list500)

# Every target must answer every path with the same 200 before anything is timed: a fast 403 would
# make a proxy look good.
for target in "${targets[@]}"; do
  for p in "${paths[@]}"; do
    auth=()
    [ -z "${target_auth[$target]}" ] || auth=(-H "Authorization: Bearer ${target_auth[$target]}")
    code=$(curl -sk "${auth[@]}" -o "$scratch/check-$target-$p.json" -w '%{http_code}' "${target_url[$target]}${path_of[$p]}")
    [ "$code" = 200 ] || die "$target answered $code for ${path_of[$p]}: $(head -c 300 "$scratch/check-$target-$p.json")"
  done
  items=$(grep -o '"uid":' "$scratch/check-$target-list500.json" | wc -l)
  [ "$items" = 500 ] || die "$target listed $items ConfigMaps, not 500"
done
list_bytes=$(wc -c <"$scratch/check-direct-list500.json")
pod_bytes=$(wc -c <"$scratch/check-direct-pod.json")
# The audit log proves the policies decided: the benchmarked request names the deciding rule.
grep -q '"portcullis.dev/rule":"developers-may-read"' "$scratch/audit-portcullis.jsonl" ||
  die "the audit log does not show the policies deciding the benchmarked request"

# CPU time (user + system, clock ticks) a process has used so far: a proxy's CPU cost per request
# depends far less on the machine's other load than its throughput does.
ticks() { [ -n "$1" ] && awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
per_request() { # ticks requests -> microseconds of CPU per request
  awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.0f", (n > 0 ? t * 1e6 / hz / n : 0) }'
}

# wrk's latency values carry their unit (us, ms, s); everything here is in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}

run_wrk() { # target path clients duration -> wrk's output
  local auth=() threads=$(($3 < 2 ? $3 : 2))
  [ -z "${target_auth[$1]}" ] || auth=(-H "Authorization: Bearer ${target_auth[$1]}")
  # --timeout 30s: wrk's default (2 s) counts slow 630 KB answers at 64 clients on a loaded machine
  # as socket errors and drops them from the latency distribution.
  wrk -t "$threads" -c "$3" -d "$4" --timeout 30s --latency "${auth[@]}" "${target_url[$1]}${path_of[$2]}"
}

results=$scratch/results.tsv
printf 'target\tpath\tclients\trps\tp50\tp99\terrors\tproxy_us\tapiserver_us\tload1\n' >"$results"
cells=$(( ${#paths[@]} * $(wc -w <<<"$clients") * ${#targets[@]} ))
say "measuring $cells cells of $duration (+ $warmup warm-up each)"
load_max=0
for p in "${paths[@]}"; do
  for c in $clients; do
    # Targets interleaved within a cell: load from the rest of the machine hits all of them alike.
    for target in "${targets[@]}"; do
      run_wrk "$target" "$p" "$c" "$warmup" >/dev/null
      proxy_before=$(ticks "${target_pid[$target]}") api_before=$(ticks "$apiserver_pid")
      run_wrk "$target" "$p" "$c" "$duration" >"$scratch/wrk-$target-$p-$c.txt"
      proxy_after=$(ticks "${target_pid[$target]}") api_after=$(ticks "$apiserver_pid")
      load1=$(cut -d' ' -f1 /proc/loadavg)
      load_max=$(awk -v a="$load_max" -v b="$load1" 'BEGIN { print (b > a ? b : a) }')
      w=$scratch/wrk-$target-$p-$c.txt
      rps=$(awk '/^Requests\/sec:/ { print $2 }' "$w")
      p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$w")")
      p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$w")")
      requests=$(awk '/requests in/ { print $1 }' "$w")
      errors=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$w")
      proxy_us=$([ -n "${target_pid[$target]}" ] && per_request $((proxy_after - proxy_before)) "$requests" || echo -)
      api_us=$(per_request $((api_after - api_before)) "$requests")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$p" "$c" "$rps" "$p50" "$p99" "$errors" \
        "$proxy_us" "$api_us" "$load1" >>"$results"
      say "$(printf '%-22s %-8s c=%-3s %9s req/s  p50 %8s ms  p99 %8s ms  errors %s  load %s' \
        "$target" "$p" "$c" "$rps" "$p50" "$p99" "$errors" "$load1")"
      [ "$errors" = 0 ] || say "warning: $target answered $errors requests with errors; see $w"
    done
  done
done
load_at_end=$(load_average)

# --- optional: where Portcullis's time goes -------------------------------------------------------
perf_report=
if [ "$perf_profile" = 1 ] && command -v perf >/dev/null; then
  perf_report=${out%.md}-perf.txt
  : >"$perf_report"
  for p in "${paths[@]}"; do
    say "profiling portcullis on $p with $perf_clients clients"
    perf record -F 999 -g -o "$scratch/perf-$p.data" -p "${target_pid[portcullis]}" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
    run_wrk portcullis "$p" "$perf_clients" "$duration" >/dev/null
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    # `|| true`: head closes the pipe early, which pipefail would otherwise count as a failure.
    {
      echo "== $p, $perf_clients clients: self time by shared object"
      perf report -i "$scratch/perf-$p.data" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep -v -e '^#' -e '^$' | head -12 || true
      echo "== $p, $perf_clients clients: inclusive time of Portcullis, Foundation and NIO functions"
      perf report -i "$scratch/perf-$p.data" --children --sort symbol --stdio -g none 2>/dev/null |
        grep -v -e '^#' -e '^$' | { swift demangle --simplified 2>/dev/null || cat; } |
        grep -E 'KubeProxy|Policy|Audit|ProxyGate|ProxyServices|JSONSerialization|JSONWriter|sorted|NSString.compare|NIOSSLHandler|runJob' |
        head -30 || true
      echo "== $p, $perf_clients clients: hottest symbols (self)"
      perf report -i "$scratch/perf-$p.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        grep -v -e '^#' -e '^$' | head -30 | { swift demangle --simplified 2>/dev/null || cat; } || true
      echo
    } >>"$perf_report"
  done
fi

# --- 7. the report --------------------------------------------------------------------------------
# Ratios per cell: req/s against direct and against kubectl proxy, p50 added over direct, and
# whether Portcullis meets the target (req/s >= kubectl proxy's, added p50 <= kubectl proxy's).
table=$(awk -F'\t' '
  NR == 1 { next }
  { key = $2 SUBSEP $3; rps[$1, key] = $4; p50[$1, key] = $5; row[++n] = $0 }
  END {
    printf "| target | path | clients | req/s | p50 ms | p99 ms | ×direct req/s | ×kubectl-proxy req/s | +p50 vs direct ms | proxy CPU µs/req | apiserver CPU µs/req | errors | load | target met |\n"
    printf "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    for (i = 1; i <= n; i++) {
      split(row[i], f, "\t"); key = f[2] SUBSEP f[3]
      d = rps["direct", key]; k = rps["kubectl-proxy", key]
      added = f[5] - p50["direct", key]; kadded = p50["kubectl-proxy", key] - p50["direct", key]
      met = "-"
      if (f[1] ~ /^portcullis/) met = (f[4] >= k && added <= kadded) ? "yes" : (f[4] >= k ? "no (p50)" : (added <= kadded ? "no (req/s)" : "no"))
      printf "| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], f[6],
        (d > 0 ? f[4] / d : 0), (k > 0 ? f[4] / k : 0), (f[1] == "direct" ? "-" : sprintf("%+.2f", added)), f[8], f[9], f[7], f[10], met
    }
  }' "$results")

{
  echo "# Proxy benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)." \
    "Load average: $load_at_start at start, up to $load_max during the runs, $load_at_end at the end."
  echo "wrk $duration per cell after a $warmup warm-up, threads = min(clients, 2), keep-alive."
  echo "Pod GET: $pod_bytes bytes; list: 500 ConfigMaps, $list_bytes bytes (JSON)."
  echo "kube-apiserver v1.20.2 (scripts/testenv); kubectl proxy: $("$kubectl_baseline" version --client 2>/dev/null | head -1)."
  echo "Portcullis: release build, TLS both sides, static token authentication, 100 policies / 300 rules" \
    "(20 policies match the benchmarked requests), audit log on."
  [ -z "$variants" ] || echo "Variants: $variants (portcullis-noaudit: no audit log; -nopolicies: no policies; -bare: neither)."
  echo
  echo "$table"
  echo
  echo "×direct and ×kubectl-proxy: requests/s relative to those targets in the same cell." \
    "+p50: median latency added over direct. CPU per request: user + system time of the proxy" \
    "process and of kube-apiserver during the measured run, divided by the requests served."
  [ -z "$perf_report" ] || echo "Profile: $(basename "$perf_report")."
} >"$out"

echo
if command -v column >/dev/null; then
  grep -v '^|---' <<<"$table" | sed 's/^| //; s/ |$//' | column -t -s'|'
else
  echo "$table"
fi
echo
say "load average: start $load_at_start, max during runs $load_max, end $load_at_end"
say "report: $out"
