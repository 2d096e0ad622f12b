# A2A TCK harness (not run by .ci/run yet: the TCK does not pass every MUST).
# The TCK sends no credentials, so this proxy adds an agent key to every request; a test
# agent, connected through the ordinary agent API (inbox, ack, send), answers by messageId
# prefix as the TCK's scenarios ask. Recipe (hub with public_url = the proxy's URL):
#   SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:18700 switchboard serve --listen 127.0.0.1:18699 ...
#   register two agents (the caller and the agent under test), then
#   python3 .ci/a2a-tck-harness.py http://127.0.0.1:18699 18700 CALLER_KEY AGENT_KEY &
#   python run_tck.py --sut-host http://127.0.0.1:18700/a2a/AGENT_ID --level must --transport jsonrpc
"""TCK harness: a proxy that adds the agent key (the TCK sends no credentials), and a test
agent that pulls from its inbox and answers by messageId prefix through the ordinary API."""
import json, sys, threading, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUB, PORT, CALLER_KEY, AGENT_KEY = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Proxy(BaseHTTPRequestHandler):
    def _go(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else None
        req = urllib.request.Request(HUB + self.path, data=body, method=self.command)
        for k, v in self.headers.items():
            if k.lower() not in ("host", "authorization", "content-length", "connection"):
                req.add_header(k, v)
        req.add_header("Authorization", "Bearer " + CALLER_KEY)
        try:
            res = urllib.request.urlopen(req, timeout=60)
        except urllib.error.HTTPError as e:
            res = e
        data = res.read()
        self.send_response(res.status if hasattr(res, "status") else res.code)
        for k, v in res.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = do_PUT = do_DELETE = _go
    def log_message(self, *a): pass

def api(method, path, body=None):
    req = urllib.request.Request(HUB + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={"Authorization": "Bearer " + AGENT_KEY,
                                                         "content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=60).read() or b"null")

def agent():
    while True:
        try:
            got = api("GET", "/v1/inbox?wait_ms=5000")
        except Exception as e:
            print("inbox:", e, flush=True); continue
        for m in got["messages"]:
            mid = ((m.get("metadata") or {}).get("a2a") or {}).get("messageId", "")
            parts, state = [{"kind": "text", "text": "Generated text content" if mid.startswith("tck-artifact-text") else "done"}], None
            if mid.startswith("tck-input-required"): state, parts = "input-required", [{"kind": "text", "text": "more?"}]
            elif mid.startswith("tck-reject-task"): state, parts = "rejected", [{"kind": "text", "text": "no"}]
            elif mid.startswith("tck-artifact-data"): parts = [{"kind": "data", "data": {"key": "value", "count": 42}}]
            elif mid.startswith("tck-artifact-file-url"): parts = [{"kind": "file", "file": {"uri": "https://example.com/output.txt", "name": "output.txt", "media_type": "text/plain"}}]
            elif mid.startswith("tck-artifact-file"): parts = [{"kind": "file", "file": {"bytes": "aGVsbG8=", "name": "output.txt", "media_type": "text/plain"}}]
            reply = {"to": m["from"], "parts": parts, "in_reply_to": m["id"]}
            if m.get("conversation_id"): reply["conversation_id"] = m["conversation_id"]
            if state: reply["metadata"] = {"a2a": {"state": state}}
            try:
                api("POST", "/v1/inbox/ack", {"ids": [m["id"]]})
            except Exception as e: print("ack:", e, flush=True)
            try:
                api("POST", "/v1/messages", reply)
            except urllib.error.HTTPError as e: print("reply:", e.code, e.read()[:300], flush=True)

threading.Thread(target=agent, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
