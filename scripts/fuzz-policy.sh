#!/usr/bin/env bash
# Fuzzes the Policy module (CEL parser, checker and evaluator; YAML policy loader and compiler) with
# libFuzzer for SECONDS (default 60), on one worker.
#   scripts/fuzz-policy.sh 600
# Builds Fuzz/PolicyFuzz with -sanitize=fuzzer,address (release by default: several times the
# executions of a debug build; FUZZ_CONFIGURATION=debug for the unoptimised one), seeds the corpus
# from Fuzz/PolicyFuzz/Seeds (the first byte of a seed picks CEL or YAML, see FuzzPolicy.swift) and
# writes crashes, hangs (over 5 s for one input) and out-of-memory inputs to fuzz-artifacts/policy
# (FUZZ_ARTIFACTS to change; git ignores it). The corpus grows in Fuzz/PolicyFuzz/.build/corpus.
# Turn every finding into a regression test in Tests/PolicyTests/Fuzz/FuzzRegressionTests.swift.
# Extra arguments go to libFuzzer. Reproduce a finding with the built binary and the artifact alone:
#   Fuzz/PolicyFuzz/.build/release/FuzzPolicy fuzz-artifacts/policy/crash-…
set -euo pipefail
seconds=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$root/Fuzz/PolicyFuzz
configuration=${FUZZ_CONFIGURATION:-release}
artifacts=${FUZZ_ARTIFACTS:-$root/fuzz-artifacts/policy}
corpus=$fuzz/.build/corpus
cd "$fuzz"
# Quiet on success; the whole log on failure.
if ! log=$(swift build -c "$configuration" --product FuzzPolicy -Xswiftc -sanitize=fuzzer,address 2>&1); then
  echo "$log" >&2
  exit 1
fi
binary=$(swift build -c "$configuration" --show-bin-path)/FuzzPolicy
mkdir -p "$corpus" "$artifacts"
for seed in "$fuzz"/Seeds/*; do
  [ -e "$corpus/$(basename "$seed")" ] || cp "$seed" "$corpus/"
done
"$binary" "$corpus" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048 \
  -artifact_prefix="$artifacts/" -dict="$fuzz/policy.dict" -print_final_stats=1 "$@"
