#!/usr/bin/env bash
# Runs the A2A TCK (../shared/conformance/a2a-tck, spec 1.0) at the MUST level against a
# live hub, on both bindings the agent cards declare (JSON-RPC and HTTP+JSON). The agent under
# test is .ci/a2a-tck-harness.py: a Switchboard agent connected through the ordinary agent
# API that answers by the TCK's messageId prefixes. The TCK calls the hub as a second agent,
# through the harness's proxy, which adds that agent's API key (the TCK sends no credentials).
#
# Run it locally the same way CI does:   bash .ci/a2a-tck.sh
# Knobs: SWITCHBOARD_BIN (a built binary; default: build the CLI in debug), CARGO_TARGET_DIR,
# A2A_TCK_DIR (the TCK's source, default ../shared/conformance/a2a-tck), A2A_TCK_POSTGRES
# (a PostgreSQL server URL: the hub runs on a fresh database there instead of SQLite),
# A2A_TCK_ARGS (extra pytest arguments, e.g. "-k CORE-SEND").
#
# Exit 0 when every MUST passes but the deselected ones: each is a place where the TCK
# (branch 1.0-dev, 357c4a8) lags spec 1.0.1, listed in DESELECT below with the spec line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
TCK_SRC=${A2A_TCK_DIR:-$ROOT/../shared/conformance/a2a-tck}
TOKEN=sba_a2a-tck-admin-token-0123456789
STREAM_TIMEOUT=2

# The TCK is read-only where it lives: a copy, with its venv, under the target dir (once per
# machine; the copy is refreshed when the source's commit changes).
TCK=$TARGET/a2a-tck
if [ ! -x "$TCK/.venv/bin/python" ] || ! cmp -s "$TCK_SRC/pyproject.toml" "$TCK/pyproject.toml"; then
  echo "== installing the A2A TCK into $TCK"
  rm -rf "$TCK"
  cp -r "$TCK_SRC" "$TCK"
  rm -rf "$TCK/.venv" "$TCK/reports"
  python3 -m venv "$TCK/.venv"
  "$TCK/.venv/bin/pip" install --quiet --disable-pip-version-check -e "$TCK"
fi

BIN=${SWITCHBOARD_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --quiet -p switchboard-cli
  BIN=$TARGET/debug/switchboard
fi

WORK=$(mktemp -d)
HUB_PID= AGENT_PID= DB=
stop() {
  for pid in $AGENT_PID $HUB_PID; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  if [ -n "$DB" ]; then
    psql -q "$A2A_TCK_POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  fi
  rm -rf "$WORK"
}
trap stop EXIT

STORE=(--data-dir "$WORK/data")
if [ -n "${A2A_TCK_POSTGRES:-}" ]; then
  DB=sb_a2a_tck_$$
  psql -q "$A2A_TCK_POSTGRES/postgres" -c "CREATE DATABASE $DB"
  STORE=(--database-url "$A2A_TCK_POSTGRES/$DB")
fi
# The TCK's webhook receiver listens on loopback: this hub may push there.
SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true SWITCHBOARD_ADMIN_TOKEN=$TOKEN RUST_LOG=${RUST_LOG:-warn} \
  "$BIN" serve --listen 127.0.0.1:0 "${STORE[@]}" >"$WORK/hub.out" 2>"$WORK/hub.err" &
HUB_PID=$!
URL=
for _ in $(seq 1 300); do
  URL=$(sed -n 's/^switchboard listening on \(http:[^ ]*\).*/\1/p' "$WORK/hub.out")
  [ -n "$URL" ] && curl -fsS "$URL/ready" >/dev/null 2>&1 && break
  kill -0 "$HUB_PID" 2>/dev/null || { echo "the hub exited:" >&2; cat "$WORK/hub.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "the hub did not come up" >&2; exit 1; }

register() {
  curl -fsS -X POST "$URL/v1/agents" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"name\": \"$1\", \"description\": \"$2\"}"
}
CALLER=$(register tck-client "The TCK, calling")
AGENT=$(register tck-agent "The TCK's agent under test, answering by messageId prefix")
CALLER_KEY=$(echo "$CALLER" | jq -r .api_key)
AGENT_ID=$(echo "$AGENT" | jq -r .agent.id)
AGENT_KEY=$(echo "$AGENT" | jq -r .api_key)

PROXY_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 .ci/a2a-tck-harness.py "$URL" "$AGENT_KEY" "$STREAM_TIMEOUT" "$PROXY_PORT" "$CALLER_KEY" \
  >"$WORK/agent.out" 2>&1 &
AGENT_PID=$!
PROXY=http://127.0.0.1:$PROXY_PORT
for _ in $(seq 1 100); do
  curl -fsS "$PROXY/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

# Where the TCK lags spec 1.0.1 (see ../shared/conformance/README.md, "Known lag"); each
# entry: a pytest node-id substring, and why.
DESELECT=(
  "tests/compatibility/http_json/test_problem_details.py::TestAIP193ErrorFormat::test_error_content_type \
    HTTP_JSON-ERR-001 wants application/json; 1.0.1 section 11.6's example answers Content-Type: application/a2a+json"
  "tests/compatibility/core_operations/test_error_handling.py::TestRestErrorStructure::test_error_uses_aip193_format \
    HTTP_JSON-ERR-001 wants application/json; 1.0.1 section 11.6's example answers Content-Type: application/a2a+json"
  "tests/compatibility/core_operations/test_transport_behavior.py::TestRestFormat::test_response_content_type \
    HTTP_JSON-SVC-001 wants application/json; 1.0.1 section 11.4: responses are Content-Type: application/a2a+json"
)
ARGS=()
for d in "${DESELECT[@]}"; do
  ARGS+=(--deselect "${d%% *}")
  echo "deselected (TCK lags spec 1.0.1): ${d#* }"
done

cd "$TCK"
status=0
TCK_STREAMING_TIMEOUT=$STREAM_TIMEOUT \
  .venv/bin/python run_tck.py --sut-host "$PROXY/a2a/$AGENT_ID" --level must \
  --transport jsonrpc,http_json -- ${A2A_TCK_ARGS:-} "${ARGS[@]}" || status=$?
if [ -f reports/compatibility.json ]; then
  jq -c '.summary // .' reports/compatibility.json | head -c 2000 || true
  echo
fi
if [ $status -ne 0 ]; then
  echo "== the agent's log:"; tail -20 "$WORK/agent.out"
  echo "== the hub's log:"; tail -20 "$WORK/hub.err"
fi
exit $status
