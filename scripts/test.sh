#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need, then formatting,
# lints and the whole test suite, real nats-server tests included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-tools.sh
export NATS_SERVER_BIN="$PWD/.tools/bin/nats-server"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
