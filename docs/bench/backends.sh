#!/usr/bin/env bash
# One run, same machine: single-node SQLite, single-node PostgreSQL, and three PostgreSQL
# nodes (a bench process per node, figures summed). Needs PostgreSQL on 127.0.0.1:5432
# (trust auth). Prints one JSON line per run.
#   bash docs/bench/backends.sh     (it builds the release binary first, as report.sh does)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
(cd "$root" && cargo build --release -p switchboard-cli --features peers)
bin="${CARGO_TARGET_DIR:-$root/target}/release/switchboard"
pg=postgres://postgres@127.0.0.1:5432
token=sba_bench-admin-token-0123456789
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS sb_bench WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

start() { # port, extra env...
  local port=$1; shift
  env "$@" SWITCHBOARD_MAX_CONNECTIONS=20000 SWITCHBOARD_MAX_CONNECTIONS_PER_IP=0 SWITCHBOARD_ADMIN_TOKEN=$token "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/$port" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && return; sleep 0.1; done
  echo "node on $port did not start" >&2; exit 1
}
bench() { # port, workload, args...
  local port=$1; shift
  SWITCHBOARD_URL=http://127.0.0.1:$port SWITCHBOARD_TOKEN=$token "$bin" bench "$@" --json 2>/dev/null
}
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); }

for w in "throughput --messages 20000" "latency --messages 3000"; do
  start 7901
  echo "{\"backend\":\"sqlite\",\"nodes\":1,\"result\":$(bench 7901 $w)}"
  stop
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS sb_bench WITH (FORCE)" -qc "CREATE DATABASE sb_bench" >/dev/null
  start 7902 SWITCHBOARD_DATABASE_URL=$pg/sb_bench
  echo "{\"backend\":\"postgres\",\"nodes\":1,\"result\":$(bench 7902 $w)}"
  stop
done

psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS sb_bench WITH (FORCE)" -qc "CREATE DATABASE sb_bench" >/dev/null
for port in 7911 7912 7913; do start $port SWITCHBOARD_DATABASE_URL=$pg/sb_bench; done
bench_pids=()
for port in 7911 7912 7913; do bench $port throughput --messages 10000 > "$work/b$port.json" & bench_pids+=($!); done
for p in "${bench_pids[@]}"; do wait "$p"; done
python3 - "$work" <<'PY'
import json, sys, glob
rs = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/b79*.json"))]
print(json.dumps({"backend": "postgres", "nodes": 3, "messages": sum(r["messages"] for r in rs),
  "messages_per_s": round(sum(r["messages_per_s"] for r in rs)), "p99_ms_worst": max(r["p99_ms"] for r in rs)}))
PY
stop
