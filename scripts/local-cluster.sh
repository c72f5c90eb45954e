#!/usr/bin/env bash
# The distributed mrtdose on one machine: SeaweedFS (S3, 127.0.0.1:8333) and the five services
# against the local RabbitMQ. Stops only what it started (pid files in the cluster directory).
#
#   scripts/local-cluster.sh up        build the services if needed, start S3 if nothing answers
#                                      on :8333, start ingest + workers, wait for the API
#   scripts/local-cluster.sh down      SIGTERM every service it started (they finish in-flight
#                                      work), then SeaweedFS if it started it
#   scripts/local-cluster.sh status    which of its processes run
#   scripts/local-cluster.sh kill S [I]   SIGKILL service S, replica I (default 0): a crash
#   scripts/local-cluster.sh start S [I]  start service S, replica I
#
# Then: mrtdose submit STUDY --endpoint http://127.0.0.1:50051 --wait; mrtdose report ID --out DIR
#
# Environment (defaults in brackets):
#   MRTDOSE_CLUSTER_DIR  pid files and logs [.cluster]
#   MRTDOSE_BIN_DIR      where the service binaries are [target/release; built when missing]
#   MRTDOSE_REPLICAS     replicas of each worker [1]
#   MRTDOSE_LISTEN       gRPC API [127.0.0.1:50051]
#   MRTDOSE_AMQP_URL, MRTDOSE_AMQP_PREFIX [mrtdose-local], MRTDOSE_RETRY_DELAY_MS [2000],
#   MRTDOSE_MAX_ATTEMPTS [3], MRTDOSE_S3_ENDPOINT [http://127.0.0.1:8333],
#   MRTDOSE_S3_BUCKET [mrtdose-test], MRTDOSE_STORE_PREFIX [local-cluster],
#   MRTDOSE_OTLP_ENDPOINT (traces and metrics over OTLP/HTTP; off when unset),
#   MRTDOSE_MODEL, MRTDOSE_DEVICE, ORT_DYLIB_PATH (segmentation; see its --help)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dir="${MRTDOSE_CLUSTER_DIR:-$root/.cluster}"
bin="${MRTDOSE_BIN_DIR:-$root/target/release}"
replicas="${MRTDOSE_REPLICAS:-1}"
export MRTDOSE_LISTEN="${MRTDOSE_LISTEN:-127.0.0.1:50051}"
export MRTDOSE_AMQP_URL="${MRTDOSE_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export MRTDOSE_AMQP_PREFIX="${MRTDOSE_AMQP_PREFIX:-mrtdose-local}"
export MRTDOSE_RETRY_DELAY_MS="${MRTDOSE_RETRY_DELAY_MS:-2000}"
export MRTDOSE_MAX_ATTEMPTS="${MRTDOSE_MAX_ATTEMPTS:-3}"
export MRTDOSE_S3_ENDPOINT="${MRTDOSE_S3_ENDPOINT:-http://127.0.0.1:8333}"
export MRTDOSE_S3_BUCKET="${MRTDOSE_S3_BUCKET:-mrtdose-test}"
export MRTDOSE_STORE_PREFIX="${MRTDOSE_STORE_PREFIX:-local-cluster}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-mrtdose}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-mrtdose-secret}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$root/.ort/lib/libonnxruntime.so}"
export MRTDOSE_MODEL="${MRTDOSE_MODEL:-$root/models/ct-organs}"
workers="registration segmentation quantification dosimetry"

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

start_one() {
  local name=$1 idx=${2:-0}
  local pidf="$dir/$name-$idx.pid"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then return 0; fi
  nohup "$bin/mrtdose-$name" >>"$dir/$name-$idx.log" 2>&1 &
  echo $! >"$pidf"
}

stop_pid() {
  local pidf=$1 sig=${2:-TERM}
  [ -f "$pidf" ] || return 0
  local pid
  pid="$(cat "$pidf")"
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidf"
}

case "${1:-}" in
  up)
    mkdir -p "$dir"
    port_open 127.0.0.1 5672 || { echo "RabbitMQ is not running on 127.0.0.1:5672 (rabbitmq-server -detached)" >&2; exit 1; }
    if [ ! -x "$bin/mrtdose-ingest" ]; then
      [ -z "${MRTDOSE_BIN_DIR:-}" ] || { echo "no service binaries in $bin" >&2; exit 1; }
      cargo build --release --locked -p mrtdose-services
    fi
    if ! port_open 127.0.0.1 8333; then
      bash scripts/s3-server.sh start
      touch "$dir/started-s3"
    fi
    start_one ingest 0
    for w in $workers; do
      for i in $(seq 0 $((replicas - 1))); do start_one "$w" "$i"; done
    done
    host="${MRTDOSE_LISTEN%:*}"; port="${MRTDOSE_LISTEN##*:}"
    for _ in $(seq 1 120); do
      if port_open "$host" "$port"; then echo "mrtdose API on http://$MRTDOSE_LISTEN (logs in $dir)"; exit 0; fi
      kill -0 "$(cat "$dir/ingest-0.pid")" 2>/dev/null || { echo "mrtdose-ingest exited:" >&2; tail -20 "$dir/ingest-0.log" >&2; exit 1; }
      sleep 0.5
    done
    echo "mrtdose-ingest did not open $MRTDOSE_LISTEN (see $dir/ingest-0.log)" >&2
    exit 1
    ;;
  down)
    [ -d "$dir" ] || exit 0
    # The API first (no new studies), then the workers, each finishing what it holds.
    stop_pid "$dir/ingest-0.pid"
    for f in "$dir"/*.pid; do [ -e "$f" ] && stop_pid "$f" & done
    wait
    if [ -f "$dir/started-s3" ]; then bash scripts/s3-server.sh stop; rm -f "$dir/started-s3"; fi
    ;;
  status)
    for f in "$dir"/*.pid; do
      [ -e "$f" ] || continue
      if kill -0 "$(cat "$f")" 2>/dev/null; then s=running; else s=stopped; fi
      echo "$(basename "$f" .pid) $(cat "$f") $s"
    done
    ;;
  kill) stop_pid "$dir/${2:?service}-${3:-0}.pid" KILL ;;
  start) start_one "${2:?service}" "${3:-0}" ;;
  *) echo "usage: $0 up|down|status|kill SERVICE [I]|start SERVICE [I]" >&2; exit 2 ;;
esac
