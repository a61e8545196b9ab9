#!/usr/bin/env bash
# Builds the server, runs it (all roles, embedded defaults) on a scratch data
# dir, and runs the Node.js client's tests (clients/node) against it over TCP
# and WebSocket. Needs Go, Node.js 20 and npm. The server binds a free port
# unless SERVER_ADDR names one. The server is always stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/server.sh
addr=${SERVER_ADDR:-127.0.0.1:0}
scratch=$(mktemp -d)
trap 'server_stop; rm -rf "$scratch"' EXIT

echo "node-test: building the server"
go build -o "$scratch/resonance" .

mkdir "$scratch/data"
server_start "$scratch/resonance" "$scratch/server.log" all --addr "$addr" \
  --data-dir "$scratch/data" --http-listen 127.0.0.1:0 --web-listen ""
server_wait node-test
echo "node-test: server listening on $server_addr"

cd "$root/clients/node"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
status=0
RESONANCE_ADDR="$server_addr" node --test --test-reporter=spec || status=$?
if [[ $status != 0 ]]; then
  echo "node-test: tests failed; last server log lines:"
  tail -n 50 "$server_log"
fi
exit "$status"
