#!/usr/bin/env bash
# Sets up a fresh machine and runs every check: formatting, clippy (-D warnings), all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/test-data.sh
# A real S3 server for the Store conformance suite (stopped on exit, whatever happens).
bash scripts/s3-server.sh start
trap 'bash scripts/s3-server.sh stop' EXIT
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
