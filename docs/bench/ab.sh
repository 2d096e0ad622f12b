#!/usr/bin/env bash
# Before/after of a hot-path change: runs the same workloads against two builds of the hub,
# alternating A and B so that a noisy machine hurts both alike. Hub on core 0, bench on
# core 1, SQLite in a fresh temp dir per run. Prints one JSON line per run.
#   bash docs/bench/ab.sh <binary A> <binary B> [rounds] [workload args ...]
# e.g. bash docs/bench/ab.sh /tmp/sb-before target/release/switchboard 3 "throughput --messages 20000"
# Build both sides alike, as the other scripts do: cargo build --release -p switchboard-cli --features peers
set -euo pipefail
a=$1 b=$2 rounds=${3:-3}; shift 3 || true
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=("throughput --messages 20000" "latency --messages 5000" "burst")
token=sba_bench-admin-token-0123456789
port=27931
work=$(mktemp -d)
hub=
cleanup() { [ -n "$hub" ] && kill "$hub" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
for r in $(seq 1 "$rounds"); do
  for w in "${workloads[@]}"; do
    for side in A B; do
      bin=$a; [ $side = B ] && bin=$b
      rm -rf "$work/data"
      SWITCHBOARD_MAX_CONNECTIONS=20000 SWITCHBOARD_MAX_CONNECTIONS_PER_IP=0 SWITCHBOARD_ADMIN_TOKEN=$token taskset -c 0 "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/data" >/dev/null 2>&1 &
      hub=$!
      for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.1; done
      res=$(SWITCHBOARD_URL=http://127.0.0.1:$port SWITCHBOARD_TOKEN=$token taskset -c 1 "$b" bench $w --json 2>/dev/null || echo null)
      # Hub CPU (user + system) over its whole life, start-up included: less sensitive to
      # a busy machine than wall-clock rates.
      cpu_ms=$(awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / t}' /proc/$hub/stat)
      kill "$hub"; wait "$hub" 2>/dev/null || true; hub=
      echo "{\"round\":$r,\"side\":\"$side\",\"workload\":\"$w\",\"hub_cpu_ms\":$cpu_ms,\"result\":$res}"
    done
  done
done
