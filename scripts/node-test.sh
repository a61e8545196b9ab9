#!/usr/bin/env bash
# Builds the server, runs it (all roles, embedded defaults) on a scratch data
# dir, and runs the Node.js client's tests (clients/node) against it over TCP
# and WebSocket. Needs Go, Node.js 20 and npm. SERVER_ADDR overrides the
# address (default 127.0.0.1:7600). The server is always stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
addr=${SERVER_ADDR:-127.0.0.1:7600}
scratch=$(mktemp -d)
log="$scratch/server.log"
pid=
# cleanup stops the server (gracefully, then by force after 15s) and removes
# the scratch directory; it runs on every exit.
cleanup() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 75); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

echo "node-test: building the server"
go build -o "$scratch/resonance" .

# Another server on the port would answer the tests in place of this one.
if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
  echo "node-test: $addr is already in use; set SERVER_ADDR to a free address"
  exit 1
fi

mkdir "$scratch/data"
"$scratch/resonance" --addr "$addr" --data-dir "$scratch/data" --http-listen 127.0.0.1:0 --web-listen "" \
  --log-format json >"$log" 2>&1 &
pid=$!
for i in $(seq 1 150); do
  (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$log"
    echo "node-test: server exited before listening"
    exit 1
  fi
  if [[ $i == 150 ]]; then
    tail -n 50 "$log"
    echo "node-test: server not listening on $addr after 30s"
    exit 1
  fi
  sleep 0.2
done
echo "node-test: server listening on $addr"

cd "$root/clients/node"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
status=0
RESONANCE_ADDR="$addr" node --test --test-reporter=spec || status=$?
if [[ $status != 0 ]]; then
  echo "node-test: tests failed; last server log lines:"
  tail -n 50 "$log"
fi
exit "$status"
