#!/usr/bin/env bash
# Cost of access control on the hot path: the same workloads against a build without it (A),
# a build with it and nothing set (B), and that build with a 10-rule policy whose last rule
# is the one that allows, and every limit on but generous (C). Alternates A, B, C per round so
# a noisy machine hurts all alike. Hub on core 0, bench on core 1, SQLite in a fresh temp dir.
# Prints one JSON line per run.
#   bash docs/bench/access-ab.sh <binary A> <binary B> [rounds] [workload args ...]
set -euo pipefail
a=$1 b=$2 rounds=${3:-3}; shift 3 || true
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=("throughput --messages 20000" "http")
token=sba_bench-admin-token-0123456789
port=27941
work=$(mktemp -d)
hub=
cleanup() { [ -n "$hub" ] && kill "$hub" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
policy='{"rules": [
  {"from": "agent:00000000-0000-0000-0000-000000000001", "to": "*", "effect": "deny"},
  {"from": "tag:untrusted", "to": "capability:billing", "effect": "deny"},
  {"from": "role:viewer", "to": "*", "effect": "deny"},
  {"from": "*", "to": "topic:orders.>", "effect": "allow"},
  {"from": "*", "to": "topic:internal.*", "effect": "deny"},
  {"from": "user:nobody", "to": "*", "effect": "deny"},
  {"from": "*", "to": "agent:00000000-0000-0000-0000-000000000002", "effect": "deny"},
  {"from": "capability:translate", "to": "capability:billing", "effect": "allow"},
  {"from": "*", "to": "conversation:c-1", "effect": "deny"},
  {"id": "all", "from": "*", "to": "*", "effect": "allow"}]}'
limits='{"send_rate": {"per_second": 1000000, "burst": 1000000}, "api_rate": {"per_second": 1000000, "burst": 1000000},
  "max_agents": 100000, "max_messages_stored": 1000000000000, "max_recipients": 100000, "max_streams": 100000}'
for r in $(seq 1 "$rounds"); do
  for w in "${workloads[@]}"; do
    for side in A B C; do
      bin=$a; [ $side != A ] && bin=$b
      rm -rf "$work/data"
      SWITCHBOARD_MAX_CONNECTIONS=20000 SWITCHBOARD_MAX_CONNECTIONS_PER_IP=0 SWITCHBOARD_ADMIN_TOKEN=$token taskset -c 0 "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/data" >/dev/null 2>&1 &
      hub=$!
      for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.1; done
      if [ $side = C ]; then
        curl -sf -X PUT -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$policy" http://127.0.0.1:$port/v1/policies >/dev/null
        curl -sf -X PUT -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$limits" http://127.0.0.1:$port/v1/limits >/dev/null
      fi
      res=$(SWITCHBOARD_URL=http://127.0.0.1:$port SWITCHBOARD_TOKEN=$token taskset -c 1 "$b" bench $w --json 2>/dev/null || echo null)
      cpu_ms=$(awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / t}' /proc/$hub/stat)
      refusals=$(curl -sf http://127.0.0.1:$port/metrics | grep -c '^switchboard_limit_refusals_total' || true)
      kill "$hub"; wait "$hub" 2>/dev/null || true; hub=
      echo "{\"round\":$r,\"side\":\"$side\",\"workload\":\"$w\",\"hub_cpu_ms\":$cpu_ms,\"refusal_series\":$refusals,\"result\":$res}"
    done
  done
done
