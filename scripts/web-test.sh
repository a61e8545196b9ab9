#!/usr/bin/env bash
# Runs the web client's tests (clients/web): the SDK's unit tests in Node,
# then the app in a real headless Chromium against a freshly built server
# (all roles, embedded defaults, scratch data dir, free loopback ports).
# Installs Debian's chromium with apt-get when /usr/bin/chromium is missing
# (CI runs as root on Debian), fonts-noto-color-emoji likewise when it is
# missing (emoji are boxes without it), and playwright-core with npm ci.
# Needs Go, Node.js 20 and npm. CHROMIUM overrides the browser; screenshots go to
# clients/web/test/screenshots (SCREENSHOTS overrides). The server is always
# stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
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

export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
  if [[ $(id -u) != 0 ]]; then
    echo "web-test: $CHROMIUM is missing; install it (apt-get install chromium) or set CHROMIUM"
    exit 1
  fi
  echo "web-test: installing chromium with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-liberation fonts-noto-color-emoji >/dev/null
fi
"$CHROMIUM" --version 2>/dev/null || true

# A color emoji font, or emoji show as empty boxes in the screenshots.
if ! dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q 'ok installed'; then
  if [[ $(id -u) != 0 ]]; then
    echo "web-test: fonts-noto-color-emoji is missing; emoji show as boxes in screenshots" \
      "(apt-get install fonts-noto-color-emoji)"
  else
    echo "web-test: installing fonts-noto-color-emoji with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      fonts-noto-color-emoji >/dev/null
  fi
fi

echo "web-test: installing playwright-core (npm ci)"
(cd clients/web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

echo "web-test: building the server"
go build -o "$scratch/resonance" .

# Free ports: the server binds port 0 and logs what it bound. The Origin
# allow-list names another site only, so the page connects only because the
# web app's own origins are added to a non-empty list.
# Every browser registers from 127.0.0.1: the suite's 40-odd sign-ups
# passed the default budget of registrations per address (30, then one per
# 10 s) when the suite ran fast, and a sign-up late in it timed out. The
# limit itself is tested in Go (logic, app); here it is raised.
mkdir "$scratch/data"
"$scratch/resonance" --addr 127.0.0.1:0 --web-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --data-dir "$scratch/data" --log-format json --allowed-origins https://other.example \
  --register-addr-limit 1000/1s \
  >"$log" 2>&1 &
pid=$!
addr= url=
for i in $(seq 1 150); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"message":"resonance started".*/\1/p' "$log" | head -n1)
  url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$log" | head -n1)
  [[ -n $addr && -n $url ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$log"
    echo "web-test: server exited before listening"
    exit 1
  fi
  if [[ $i == 150 ]]; then
    tail -n 50 "$log"
    echo "web-test: server not started after 30s"
    exit 1
  fi
  sleep 0.2
done
echo "web-test: gateway on $addr, web app at $url"

cd "$root/clients/web"
status=0
RESONANCE_ADDR="$addr" RESONANCE_WEB_URL="$url" RESONANCE_BIN="$scratch/resonance" \
  node --test --test-concurrency=1 --test-reporter=spec test/*.test.js || status=$?
if [[ $status != 0 ]]; then
  echo "web-test: tests failed; last server log lines:"
  tail -n 50 "$log"
fi
exit "$status"
