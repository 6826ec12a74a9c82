#!/usr/bin/env bash
# Start (or stop) the demo's loopback services: the sample feed server and the SMTP sink.
# Usage: scripts/services.sh start|stop
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p var/run var/log var/outbox
FEED_PORT=${SANCTIONS_WATCH_FEED_PORT:-8765}
SMTP_PORT=${SANCTIONS_WATCH_SMTP_PORT:-8025}

wait_port() {
  for _ in $(seq 1 50); do
    if $BIN/python -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "service on port $1 did not start; see var/log/" >&2; return 1
}

start_one() {  # name port command...
  local name=$1 port=$2; shift 2
  if [ -f "var/run/$name.pid" ] && kill -0 "$(cat "var/run/$name.pid")" 2>/dev/null; then return 0; fi
  nohup "$@" >"var/log/$name.log" 2>&1 &
  echo $! >"var/run/$name.pid"
  wait_port "$port"
}

case "${1:-start}" in
  start)
    start_one feedserver "$FEED_PORT" $BIN/python -m pipeline.devtools.feedserver --dir data/sample_feeds --port "$FEED_PORT"
    start_one mailsink "$SMTP_PORT" $BIN/python -m pipeline.devtools.mailsink --dir var/outbox --port "$SMTP_PORT"
    ;;
  stop)
    for name in feedserver mailsink; do
      if [ -f "var/run/$name.pid" ]; then kill "$(cat "var/run/$name.pid")" 2>/dev/null || true; rm -f "var/run/$name.pid"; fi
    done
    ;;
esac
