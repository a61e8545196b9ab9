#!/usr/bin/env bash
# Runs bin/resonance (all roles, embedded defaults) on a scratch data dir,
# waits for its client port, runs `bench smoke` against it and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=${SMOKE_ADDR:-127.0.0.1:7000}
data=$(mktemp -d)
log="$data/server.log"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT

RESONANCE_DATA_DIR="$data" RESONANCE_ADDR="$addr" RESONANCE_HTTP_LISTEN=127.0.0.1:0 \
  ./bin/resonance >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "server exited"; exit 1; }
  sleep 0.2
done
go run ./bench smoke --addr "$addr" --users 20 --messages 50 || { tail -n 50 "$log"; exit 1; }
kill -TERM "$pid"
wait "$pid"
grep -q '"level":"error"\|ERR' "$log" && { echo "server logged errors:"; grep 'error\|ERR' "$log"; exit 1; }
echo "smoke: server stopped cleanly"
