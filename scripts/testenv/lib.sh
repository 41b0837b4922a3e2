# Shared settings for the test-cluster scripts. Sourced, not executed.
K8S_VERSION=v1.20.2
K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_SRC_DIR=kubernetes-1.20.5+really1.20.2
# Debian's reflect2 1.0.2 replaces the tree's 1.0.1 (see build.sh); part of the cache key.
KUBECTL_PYPI_VERSION=1.37.1
PYTHON_KUBERNETES_VERSION=37.0.2
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
K8S_BUILD_ID=$K8S_VERSION-reflect2-1.0.2
# Machine-wide cache outside any clone: the apiserver build costs ~8 minutes, so it is done once.
PORTCULLIS_CACHE=${PORTCULLIS_CACHE:-/var/cache/portcullis}
TESTENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[testenv] %s\n' "$*" >&2; }
die() { printf '[testenv] error: %s\n' "$*" >&2; exit 1; }

apiserver_bin() { echo "$PORTCULLIS_CACHE/kube-apiserver-$K8S_BUILD_ID/kube-apiserver"; }
agent_hash() { (cd "$TESTENV_DIR/nodeagent" && cat $(ls | sort) | sha256sum | cut -c1-16); }
agent_bin() { echo "$PORTCULLIS_CACHE/node-agent-$K8S_BUILD_ID-$(agent_hash)/portcullis-node-agent"; }
kubectl_120_bin() { echo "$PORTCULLIS_CACHE/kubectl-1.20/kubectl"; }
kubectl_dir() { dirname "$(readlink -f "$(command -v kubectl.1.33 || command -v kubectl || echo /usr/lib/google-cloud-sdk/bin/kubectl)")"; }
