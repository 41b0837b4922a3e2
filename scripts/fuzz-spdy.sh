#!/usr/bin/env bash
# Fuzzes the SPDY frame decoder and header decompression with libFuzzer for SECONDS (default 60).
#   scripts/fuzz-spdy.sh 600
# Builds Fuzz/ with -sanitize=fuzzer,address (release by default: about 9x the executions of a debug
# build; FUZZ_CONFIGURATION=debug for the unoptimised one), seeds the corpus from Fuzz/Seeds (the
# protocols.md §9 vectors) and writes crashes to Fuzz/.build/artifacts. Turn every crash into a
# regression test in Tests/SPDYTests/FuzzRegressionTests.swift.
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$root/Fuzz
cd "$fuzz"
configuration=${FUZZ_CONFIGURATION:-release}
swift build -c "$configuration" --product FuzzSPDY -Xswiftc -sanitize=fuzzer,address >/dev/null
binary=$(swift build -c "$configuration" --show-bin-path)/FuzzSPDY
corpus=$fuzz/.build/corpus
artifacts=$fuzz/.build/artifacts
mkdir -p "$corpus" "$artifacts"
cp -n "$fuzz"/Seeds/* "$corpus"/ 2>/dev/null || true
"$binary" "$corpus" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$artifacts/" -print_final_stats=1
