#!/usr/bin/env bash
# Coverage-guided fuzzing of the topology parser, validator and renderer (fuzz/fuzz_targets/):
# installs cargo-fuzz (crates.io) when missing, seeds the corpus with the shipped topologies,
# runs RUNS executions (default 1,000,000) and prints the figures. A crash stops the run with
# its input under fuzz/artifacts/; `cargo fuzz run topology <file>` replays it.
# usage: scripts/fuzz.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs="${1:-1000000}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo-fuzz builds with nightly flags (-Z sanitizer): this toolchain is stable, so they are
# allowed explicitly.
export RUSTC_BOOTSTRAP=1

corpus=fuzz/corpus/topology
mkdir -p "$corpus"
cp topologies/*.yaml "$corpus/"
started=$(date +%s)
cargo fuzz run --release topology "$corpus" -- -runs="$runs" -max_len=8192 -timeout=10 -print_final_stats=1 2>&1 \
  | tee /tmp/notif-infra-fuzz.log | grep -E "^(#[0-9]+.*(DONE|pulse)|stat::|==[0-9]+==|SUMMARY|Done)" || true
status=${PIPESTATUS[0]}
echo "fuzz: ${runs} runs asked, $(( $(date +%s) - started )) s, corpus $(ls "$corpus" | wc -l) inputs, exit ${status}"
exit "$status"
