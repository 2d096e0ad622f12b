#!/usr/bin/env bash
# Retention under a steady load: a hub with a 60 s retention takes RATE msg/s for SECONDS
# (the bench's `latency` workload: one producer at a fixed rate, one WebSocket consumer
# acknowledging each message), and the store's size is sampled every 10 s. With retention
# working, the size stops growing after the first minutes: what is purged each second
# (messages older than 60 s, all acknowledged) matches what arrives.
#
#   docs/bench/retention.sh                       # SQLite, 1,000 msg/s for 600 s
#   RATE=500 SECONDS_=120 docs/bench/retention.sh # shorter
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/retention docs/bench/retention.sh
#
# Prints CSV (elapsed s, store bytes, messages purged so far, messages accepted so far, open
# deliveries) and writes it to $OUT (default retention-<backend>.csv), the hub's and the
# bench's logs to $OUT's name with -logs. Uses target/release/switchboard
# unless SWITCHBOARD_BIN names another binary.
set -euo pipefail
BIN=${SWITCHBOARD_BIN:-target/release/switchboard}
RATE=${RATE:-1000}
DURATION=${SECONDS_:-600}
RETENTION=${RETENTION:-60}
PORT=${PORT:-18791}
DIR=$(mktemp -d)
BACKEND=sqlite
[ -n "${DATABASE_URL:-}" ] && BACKEND=postgres
OUT=${OUT:-retention-$BACKEND.csv}
URL=http://127.0.0.1:$PORT
TOKEN=sba_retention-bench-admin-token-0123
LOGS=${OUT%.csv}-logs
cleanup() {
  kill "$HUB" 2>/dev/null || true
  wait "$HUB" 2>/dev/null || true
  mkdir -p "$LOGS" && cp "$DIR"/*.log "$DIR"/bench.* "$LOGS"/ 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

if [ "$BACKEND" = postgres ]; then
  db=${DATABASE_URL##*/}
  psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
fi
env SWITCHBOARD_ADMIN_TOKEN=$TOKEN ${DATABASE_URL:+SWITCHBOARD_DATABASE_URL=$DATABASE_URL} \
  "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$DIR" >"$DIR/hub.log" 2>&1 &
HUB=$!
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT "$URL/v1/tenant/retention" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"messages_max_age_seconds\": $RETENTION}" >/dev/null

size() {
  if [ "$BACKEND" = postgres ]; then
    psql "$DATABASE_URL" -tAc "SELECT pg_database_size(current_database())"
  else
    du -cb "$DIR"/switchboard.db* | tail -1 | cut -f1
  fi
}
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
open_deliveries() { curl -s "$URL/metrics" | awk '/^switchboard_inbox_depth\{/ { n += $2 } END { print n + 0 }'; }

SWITCHBOARD_URL=$URL SWITCHBOARD_TOKEN=$TOKEN "$BIN" bench latency --rate "$RATE" \
  --messages $((RATE * DURATION)) >"$DIR/bench.out" 2>"$DIR/bench.err" &
BENCH=$!
echo "elapsed_s,store_bytes,purged_messages,accepted_messages,open_deliveries" | tee "$OUT"
start=$(date +%s)
while kill -0 "$BENCH" 2>/dev/null; do
  now=$(date +%s)
  echo "$((now - start)),$(size),$(metric switchboard_retention_purged_messages_total),$(metric switchboard_messages_accepted_total),$(open_deliveries)" | tee -a "$OUT"
  sleep 10
done
wait "$BENCH"
cat "$DIR/bench.out"
