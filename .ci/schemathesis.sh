#!/usr/bin/env bash
# Fuzzes a live hub from its own OpenAPI document with schemathesis: starts the built
# `switchboard serve` on a free port with a temporary data dir and a known admin token,
# waits for /ready, runs schemathesis with that token, and stops the hub. Fails on any 5xx
# and on any answer that breaks the document (status, content type, headers, body schema),
# or on a request the document forbids that the hub accepts.
#
# Run it locally the same way CI does:   bash .ci/schemathesis.sh
# Knobs (environment): SCHEMATHESIS_MAX_EXAMPLES (per operation, default 100),
# SCHEMATHESIS_SEED (default fixed, so that CI is repeatable; vary it to explore),
# SWITCHBOARD_BIN (a built binary; default: build the CLI in debug), CARGO_TARGET_DIR,
# SCHEMATHESIS_POSTGRES (a PostgreSQL server URL such as postgres://postgres@127.0.0.1:5432:
# the hub then runs on a fresh database there, dropped afterwards, instead of SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ST_VERSION=4.32.5
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-100}
SEED=${SCHEMATHESIS_SEED:-20261128}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
TOKEN=sba_schemathesis-admin-token-0123456789

# The venv lives under the target dir: built once per machine, out of the source tree.
VENV=$TARGET/schemathesis-$ST_VERSION
if [ ! -x "$VENV/bin/st" ]; then
  echo "== installing schemathesis $ST_VERSION into $VENV"
  # The newest Python 3 at hand (see WORKERS below for why 3.12 or later is better).
  # pyenv keeps versions that are not the global one out of PATH: look there too.
  PY=python3
  for candidate in python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then PY=$candidate; break; fi
  done
  "$PY" -m venv "$VENV" || { echo "$PY -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
# Python 3.11 keeps the AST builder's recursion count in state shared by all threads: two
# workers that parse source at once (hypothesis does, to describe its strategies) can abort a
# run with "SystemError: AST constructor recursion depth mismatch", a Runtime Error that is
# not the hub's (fixed in 3.12). On an older Python the fuzzer runs one worker.
WORKERS=2
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' || WORKERS=1

BIN=${SWITCHBOARD_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --quiet -p switchboard-cli
  BIN=$TARGET/debug/switchboard
fi

WORK=$(mktemp -d)
HUB_PID=
DB=
stop_hub() {
  if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
    kill "$HUB_PID"
    wait "$HUB_PID" 2>/dev/null || true
  fi
  if [ -n "$DB" ]; then
    psql -q "$SCHEMATHESIS_POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  fi
  rm -rf "$WORK"
}
trap stop_hub EXIT

STORE=(--data-dir "$WORK/data")
if [ -n "${SCHEMATHESIS_POSTGRES:-}" ]; then
  DB=sb_schemathesis_$$
  psql -q "$SCHEMATHESIS_POSTGRES/postgres" -c "CREATE DATABASE $DB"
  STORE=(--database-url "$SCHEMATHESIS_POSTGRES/$DB")
fi
SWITCHBOARD_ADMIN_TOKEN=$TOKEN RUST_LOG=${RUST_LOG:-warn} \
  "$BIN" serve --listen 127.0.0.1:0 "${STORE[@]}" >"$WORK/hub.out" 2>"$WORK/hub.err" &
HUB_PID=$!

# The hub prints the address it bound (port 0 = a free one) once it listens.
URL=
for _ in $(seq 1 300); do
  URL=$(sed -n 's/^switchboard listening on \(http:[^ ]*\).*/\1/p' "$WORK/hub.out")
  [ -n "$URL" ] && curl -fsS "$URL/ready" >/dev/null 2>&1 && break
  kill -0 "$HUB_PID" 2>/dev/null || { echo "the hub exited:" >&2; cat "$WORK/hub.err" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$URL/ready" >/dev/null || { echo "the hub was not ready within 30 s" >&2; cat "$WORK/hub.err" >&2; exit 1; }
# An agent for the operations only an agent may call (see schemathesis-agent.toml), with a
# few messages waiting, so that its inbox answers are checked against their schema too.
AGENT=$(curl -fsS -X POST "$URL/v1/agents" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"schemathesis-agent","capabilities":[{"name":"echo"}]}')
SCHEMATHESIS_AGENT_KEY=$(printf '%s' "$AGENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
SCHEMATHESIS_AGENT_ID=$(printf '%s' "$AGENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent"]["id"])')
export SCHEMATHESIS_AGENT_KEY SCHEMATHESIS_AGENT_ID
for i in 1 2 3 4 5; do
  curl -fsS -o /dev/null -X POST "$URL/v1/messages" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"to":"agent:'"$SCHEMATHESIS_AGENT_ID"'","parts":[{"kind":"text","text":"hello '"$i"'"},{"kind":"data","data":{"n":'"$i"'}}],"ttl_seconds":3600,"metadata":{"k":"v"}}'
done

# Two runs: the agent-only operations with the agent's key, then every operation with the
# admin token (where the agent-only ones answer 403 once their parameters are checked). The
# agent's run goes first, because the admin run may delete the agent.
status=0
# schemathesis keeps a crash cache in `.schemathesis/` of its working directory and replays
# it on the next run; run it in the temporary directory so that every run starts clean.
fuzz() {
  local config=$1 token=$2; shift 2
  (cd "$WORK" && "$VENV/bin/st" --no-color --config-file "$ROOT/$config" run "$URL/openapi.json" \
    --header "Authorization: Bearer $token" \
    --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers "$WORKERS" --request-timeout 30 \
    --report junit --report-dir "$TARGET/schemathesis-report" "$@") || status=1
}
echo "== schemathesis $ST_VERSION, agent-only operations as an agent, against $URL (${DB:-SQLite}; max $MAX_EXAMPLES examples per operation, seed $SEED, $WORKERS worker(s))"
fuzz .ci/schemathesis-agent.toml "$SCHEMATHESIS_AGENT_KEY" \
  --include-operation-id-regex '^(fetchInbox|ack|nack|heartbeat)$'
echo "== schemathesis $ST_VERSION, every operation as the admin, against $URL"
fuzz .ci/schemathesis.toml "$TOKEN"

if grep -q "panicked" "$WORK/hub.err"; then
  echo "the hub panicked during the run:" >&2
  grep -A5 "panicked" "$WORK/hub.err" >&2
  status=1
fi
exit $status
