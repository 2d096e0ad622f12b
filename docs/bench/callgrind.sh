#!/usr/bin/env bash
# Instructions of the hub per message under callgrind (repeatable on a busy machine):
#   cargo build --release -p switchboard-cli --features peers   (as the other scripts build it)
#   bash docs/bench/callgrind.sh target/release/switchboard /tmp/cg throughput --messages 3000
# then `callgrind_annotate /tmp/cg` for where they go.
set -euo pipefail
bin=$1 out=$2; shift 2
token=sba_bench-admin-token-0123456789
port=27941
work=$(mktemp -d)
SWITCHBOARD_ADMIN_TOKEN=$token valgrind --tool=callgrind --callgrind-out-file=$out "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/data" >/dev/null 2>$out.log &
hub=$!
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.2; done
SWITCHBOARD_URL=http://127.0.0.1:$port SWITCHBOARD_TOKEN=$token "$bin" bench "$@" --json 2>/dev/null > $out.json || true
kill -INT $hub; wait $hub || true
rm -rf "$work"
python3 - "$out" <<'PY'
import json,sys,re
out=sys.argv[1]
r=json.load(open(out+'.json'))
log=open(out+'.log').read()
m=re.search(r'Collected : (\d+)', log)
ir=int(m.group(1)) if m else None
print(json.dumps({"messages":r.get("messages"),"msg_per_s":round(r.get("messages_per_s",0)),"instructions":ir,"instr_per_msg":round(ir/max(1,r.get("messages",1))) if ir else None}))
PY
