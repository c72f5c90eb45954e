#!/usr/bin/env bash
# Sets up a fresh machine and runs every check: formatting, clippy (-D warnings), all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/test-data.sh
# The RabbitMQ the machine runs (127.0.0.1:5672, guest/guest); started if it is down.
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  rabbitmq-server -detached || true
  for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
fi
# A real S3 server for the Store conformance suite (stopped on exit, whatever happens).
bash scripts/s3-server.sh start
trap 'bash scripts/s3-server.sh stop' EXIT
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
