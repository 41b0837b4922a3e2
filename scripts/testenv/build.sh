#!/usr/bin/env bash
# Installs the test cluster's prerequisites and builds kube-apiserver (and the node agent) from
# Debian bookworm's `kubernetes` source package, offline. The binaries are cached machine-wide,
# outside any clone, keyed by version (and by the agent's source hash), so later runs skip this.
#
# Usage: build.sh [all|deps|apiserver|agent]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

install_deps() {
  local missing=()
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v go >/dev/null || [ -x /usr/lib/go/bin/go ] || missing+=(golang-go)
  command -v rsync >/dev/null || missing+=(rsync)
  command -v jq >/dev/null || missing+=(jq)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  command -v setsid >/dev/null || missing+=(util-linux)
  command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
  # Reads back the pcap files of port-forward captures in the tests.
  command -v tcpdump >/dev/null || [ -x /usr/bin/tcpdump ] || missing+=(tcpdump)
  [ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
  [ -d "$REFLECT2_SRC" ] || missing+=(golang-github-modern-go-reflect2-dev)
  if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      >/etc/apt/sources.list.d/portcullis-deb-src.sources
    need_update=1
  fi
  if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ] || ! apt-cache showsrc kubernetes >/dev/null 2>&1; then
    log "apt: updating package lists"
    apt-get update -qq
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}" >/dev/null
  fi
}

# Debian's kubernetes-client (kubectl 1.20) cannot be installed beside the image's kubectl package
# (both own /usr/bin/kubectl), so its .deb is unpacked into the cache instead.
install_kubectl_120() {
  [ -x "$(kubectl_120_bin)" ] && return 0
  log "unpacking Debian's kubernetes-client (kubectl 1.20) into the cache"
  local tmp="$PORTCULLIS_CACHE/kubectl-1.20.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  (cd "$tmp" && apt-get download -qq "kubernetes-client=$K8S_DEB_VERSION" >/dev/null && dpkg-deb -x kubernetes-client_*.deb root)
  mkdir -p "$(dirname "$(kubectl_120_bin)")"
  mv "$tmp/root/usr/bin/kubectl" "$(kubectl_120_bin)"
  rm -rf "$tmp"
}

fetch_source() {
  local src="$PORTCULLIS_CACHE/src"
  if [ ! -d "$src/$K8S_SRC_DIR" ]; then
    log "fetching Debian's kubernetes source package"
    rm -rf "$src.tmp" && mkdir -p "$src.tmp"
    (cd "$src.tmp" && apt-get source -qq "kubernetes=$K8S_DEB_VERSION" >/dev/null 2>&1)
    mkdir -p "$src" && mv "$src.tmp/$K8S_SRC_DIR" "$src/" && rm -rf "$src.tmp"
  fi
  # Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, whose map iteration crashes under Go >= 1.18
  # (the apiserver dies with SIGSEGV in mapiterinit when it encodes a labelled object). Debian
  # packages the fixed 1.0.2; it is API-compatible, so it replaces the vendored copy.
  if ! cmp -s "$REFLECT2_SRC/go_above_118.go" "$src/$K8S_SRC_DIR/vendor/github.com/modern-go/reflect2/go_above_118.go"; then
    log "replacing the vendored reflect2 1.0.1 with Debian's 1.0.2"
    rsync -a --delete --exclude BUILD "$REFLECT2_SRC/" "$src/$K8S_SRC_DIR/vendor/github.com/modern-go/reflect2/"
  fi
  mkdir -p "$src/$K8S_SRC_DIR/.go/src/k8s.io"
  ln -sfn ../../.. "$src/$K8S_SRC_DIR/.go/src/k8s.io/kubernetes"
}

go_make() {
  local tree="$PORTCULLIS_CACHE/src/$K8S_SRC_DIR"
  (cd "$tree" && env GOPATH="$tree/.go" CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=vendor \
    GOCACHE="$PORTCULLIS_CACHE/go-build" HOME="$PORTCULLIS_CACHE" PATH=/usr/lib/go/bin:$PATH \
    make "$@")
}

build_apiserver() {
  [ -x "$(apiserver_bin)" ] && return 0
  fetch_source
  log "building kube-apiserver $K8S_VERSION (about 8 minutes on 2 cores; cached afterwards)"
  local blog="$PORTCULLIS_CACHE/build-apiserver.log"
  go_make WHAT=cmd/kube-apiserver >"$blog" 2>&1 || { tail -30 "$blog"; die "kube-apiserver build failed; log: $blog"; }
  mkdir -p "$(dirname "$(apiserver_bin)")"
  cp "$PORTCULLIS_CACHE/src/$K8S_SRC_DIR/_output/bin/kube-apiserver" "$(apiserver_bin).tmp"
  mv "$(apiserver_bin).tmp" "$(apiserver_bin)"
}

build_agent() {
  local bin; bin=$(agent_bin)
  [ -x "$bin" ] && return 0
  fetch_source
  local tree="$PORTCULLIS_CACHE/src/$K8S_SRC_DIR"
  log "building the node agent against Kubernetes' kubelet streaming packages"
  rm -rf "$tree/cmd/portcullis-node-agent"
  cp -r "$here/nodeagent" "$tree/cmd/portcullis-node-agent"
  local blog="$PORTCULLIS_CACHE/build-agent.log"
  # make (not `go build`): the tree builds in GOPATH mode against its vendor/ directory.
  go_make WHAT=cmd/portcullis-node-agent >"$blog" 2>&1 || { tail -30 "$blog"; die "node agent build failed; log: $blog"; }
  mkdir -p "$(dirname "$bin")"
  cp "$tree/_output/bin/portcullis-node-agent" "$bin.tmp"
  mv "$bin.tmp" "$bin"
}

mkdir -p "$PORTCULLIS_CACHE"
exec 9>"$PORTCULLIS_CACHE/build.lock"
flock 9
case "${1:-all}" in
  deps) install_deps; install_kubectl_120; bash "$here/kubectl-matrix.sh" --install >/dev/null ;;
  apiserver) install_deps; build_apiserver ;;
  agent) install_deps; build_agent ;;
  all) install_deps; install_kubectl_120; bash "$here/kubectl-matrix.sh" --install >/dev/null; build_apiserver; build_agent ;;
  *) die "usage: build.sh [all|deps|apiserver|agent]" ;;
esac
