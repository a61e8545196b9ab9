# Sourced by the scripts that test against a server of their own. It starts
# one (all roles, JSON logs) and waits until that very server says it
# started, reading its client address from its own log: a wait for "the port
# answers" would also be satisfied by another process on that port, and the
# tests would then run against it.
#
# server_start BIN LOG ARGS... starts BIN with ARGS, logging to LOG, and
# sets server_pid; server_wait NAME waits for it and sets server_addr, or
# prints its log and exits when it ends or does not start within 30s;
# server_stop stops it (TERM, then KILL after 15s). The caller's EXIT trap
# calls server_stop.

server_pid=
server_log=
server_addr=

server_start() {
  local bin=$1
  server_log=$2
  shift 2
  "$bin" "$@" --log-format json >"$server_log" 2>&1 &
  server_pid=$!
}

server_wait() {
  local name=$1 code
  for _ in $(seq 1 150); do
    server_addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"message":"resonance started".*/\1/p' \
      "$server_log" | head -n1)
    [[ -n $server_addr ]] && return 0
    if ! kill -0 "$server_pid" 2>/dev/null; then
      if wait "$server_pid"; then code=0; else code=$?; fi
      server_pid=
      echo "$name: the server exited before it started (exit code $code); its log:"
      cat "$server_log"
      exit 1
    fi
    sleep 0.2
  done
  echo "$name: the server did not start within 30s; its log:"
  cat "$server_log"
  exit 1
}

server_stop() {
  [[ -n $server_pid ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 75); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
