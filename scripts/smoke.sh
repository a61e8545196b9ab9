#!/usr/bin/env bash
# Runs bin/resonance (all roles, embedded defaults) on a scratch data dir,
# waits until it has started, runs `bench smoke` against it and stops it.
# The server binds a free port unless SMOKE_ADDR names one; RESONANCE_BIN
# overrides the binary. It fails, with the server's log, if the server
# does not start (its port taken, say) or does not stop cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/server.sh
bin=${RESONANCE_BIN:-./bin/resonance}
addr=${SMOKE_ADDR:-127.0.0.1:0}
data=$(mktemp -d)
trap 'server_stop; rm -rf "$data"' EXIT

server_start "$bin" "$data/server.log" all --data-dir "$data" --addr "$addr" \
  --http-listen 127.0.0.1:0 --web-listen ""
server_wait smoke
go run ./bench smoke --addr "$server_addr" --users 20 --messages 50 ||
  { echo "smoke: bench failed; last server log lines:"; tail -n 50 "$server_log"; exit 1; }

kill -TERM "$server_pid"
if wait "$server_pid"; then code=0; else code=$?; fi
server_pid=
if [[ $code != 0 ]]; then
  echo "smoke: the server exited with code $code on SIGTERM; its log:"
  cat "$server_log"
  exit 1
fi
if grep -q '"level":"error"' "$server_log"; then
  echo "smoke: server logged errors:"
  grep '"level":"error"' "$server_log"
  exit 1
fi
echo "smoke: server stopped cleanly"
