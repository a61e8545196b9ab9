#!/usr/bin/env bash
# Checks that smoke.sh runs against its own server or not at all: with its
# port taken by another process, and with its server failing at start, it
# must fail, print that server's log, and never reach the bench. Needs Go
# and python3 (for the other process).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
holder=
trap '[[ -z $holder ]] || kill "$holder" 2>/dev/null || true; rm -rf "$scratch"' EXIT
failures=0

# expect NAME OUTPUT CODE WANT... checks that a run failed and said each WANT.
expect() {
  local name=$1 out=$2 code=$3 want
  shift 3
  if [[ $code == 0 ]]; then
    echo "FAIL $name: smoke.sh succeeded"; failures=$((failures + 1)); return
  fi
  if [[ $out == *"lost="* ]]; then
    echo "FAIL $name: the bench ran:"; echo "$out"; failures=$((failures + 1)); return
  fi
  for want in "$@"; do
    if [[ $out != *"$want"* ]]; then
      echo "FAIL $name: no \"$want\" in:"; echo "$out"; failures=$((failures + 1)); return
    fi
  done
  echo "ok   $name"
}

echo "script-test: building the server"
go build -o "$scratch/resonance" .

# Another process holds a port: it accepts connections and answers nothing.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
time.sleep(600)
' >"$scratch/port" &
holder=$!
for _ in $(seq 1 50); do [[ -s $scratch/port ]] && break; sleep 0.1; done
taken=127.0.0.1:$(cat "$scratch/port")

code=0
out=$(SMOKE_ADDR=$taken RESONANCE_BIN=$scratch/resonance timeout 120 scripts/smoke.sh 2>&1) ||
  code=$?
expect "port in use" "$out" "$code" "exited before it started" "address already in use"

code=0
out=$(RESONANCE_LOG_LEVEL=loud RESONANCE_BIN=$scratch/resonance \
  timeout 120 scripts/smoke.sh 2>&1) || code=$?
expect "bad configuration" "$out" "$code" "exited before it started (exit code 2)" \
  '--log-level "loud"'

if [[ $failures != 0 ]]; then
  echo "script-test: $failures failed"
  exit 1
fi
echo "script-test: ok"
