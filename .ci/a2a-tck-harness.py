# The A2A TCK's agent under test, as a Switchboard agent: it pulls its inbox through the
# ordinary agent API (GET /v1/inbox, POST /v1/inbox/ack) and answers each message with
# replies (POST /v1/messages) by the TCK's messageId prefixes (its scenarios/*.feature),
# using the hub's reply convention (metadata.a2a: state, artifact, message; docs/a2a.md).
# Nothing in the hub knows about it.
#
# The TCK (1.0-dev, 357c4a8) sends no credentials (its A2A_AUTH_* settings are not wired
# into its transport clients), so the harness also runs a small proxy on PROXY_PORT that adds
# the caller's key to every request and streams the answers through (Server-Sent Events
# included); the Host header is passed on, so the cards name the proxy. Usage:
#   python3 .ci/a2a-tck-harness.py HUB_URL AGENT_KEY STREAMING_TIMEOUT_SECONDS PROXY_PORT CALLER_KEY
import http.client, json, sys, threading, time, urllib.parse, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUB, KEY = sys.argv[1], sys.argv[2]
STREAM_TIMEOUT = float(sys.argv[3])
PROXY_PORT, CALLER_KEY = int(sys.argv[4]), sys.argv[5]


class Proxy(BaseHTTPRequestHandler):
    """Forwards to the hub with `Authorization: Bearer CALLER_KEY`, answer streamed."""

    def _go(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else None
        hub = urllib.parse.urlsplit(HUB)
        conn = http.client.HTTPConnection(hub.hostname, hub.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "connection")}
        headers["Authorization"] = "Bearer " + CALLER_KEY
        conn.request(self.command, self.path, body=body, headers=headers)
        res = conn.getresponse()
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("connection", "close")
        self.end_headers()
        while True:
            chunk = res.read1(65536)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = _go

    def log_message(self, *a):
        pass


def api(method, path, body=None):
    req = urllib.request.Request(
        HUB + path, data=json.dumps(body).encode() if body is not None else None, method=method,
        headers={"Authorization": "Bearer " + KEY, "content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=60).read() or b"null")


def text(t):
    return [{"kind": "text", "text": t}]


FILE = {"kind": "file", "file": {"bytes": "R2VuZXJhdGVkIGZpbGU=", "name": "output.txt", "media_type": "text/plain"}}
URL = {"kind": "file", "file": {"uri": "https://example.com/output.txt", "name": "output.txt", "media_type": "text/plain"}}
DATA = {"kind": "data", "data": {"key": "value", "count": 42}}


def plan(mid):
    """The replies for a message: a list of (parts, a2a metadata, pause before it)."""
    working = (text("working"), {"state": "working"}, 0)
    done = (text("done"), {"state": "completed"}, 0)
    art = lambda parts, **extra: (parts, {"artifact": dict(extra) or True}, 0)
    if mid.startswith("tck-message-response"):
        return [(text("Direct message response"), {"message": True}, 0)]
    if mid.startswith("tck-input-required"):
        return [(text("Which one?"), {"state": "input-required"}, 0)]
    if mid.startswith("tck-reject-task"):
        return [(text("rejected"), {"state": "rejected"}, 0)]
    if mid.startswith("tck-artifact-text"):
        return [art(text("Generated text content")), done]
    if mid.startswith("tck-artifact-file-url"):
        return [art([URL]), done]
    if mid.startswith("tck-artifact-file"):
        return [art([FILE]), done]
    if mid.startswith("tck-artifact-data"):
        return [art([DATA]), done]
    if mid.startswith("tck-stream-artifact-chunked"):
        return [working, art(text("chunk-1 "), artifactId="chunked", append=False, lastChunk=False),
                art(text("chunk-2"), artifactId="chunked", append=True, lastChunk=True), done]
    if mid.startswith("tck-stream-artifact-file"):
        return [working, art([FILE]), done]
    if mid.startswith("tck-stream-002"):
        return [done]
    if mid.startswith("tck-stream"):
        words = {"tck-stream-001": "Stream hello from TCK", "tck-stream-003": "Stream task lifecycle",
                 "tck-stream-ordering-001": "Ordered output", "tck-stream-artifact-text": "Streamed text content"}
        t = next((w for p, w in words.items() if mid.startswith(p)), "streamed")
        return [working, art(text(t)), done]
    if mid.startswith("test-resubscribe-message-id"):
        return [working, (text("done"), {"state": "completed"}, 2 * STREAM_TIMEOUT)]
    return [(text("Hello from TCK"), {"state": "completed"}, 0)]


def answer(m):
    a2a = (m.get("metadata") or {}).get("a2a") or {}
    if a2a.get("cancel"):
        return  # the client canceled: nothing more to say
    for parts, meta, pause in plan(a2a.get("messageId", "")):
        if pause:
            time.sleep(pause)
        reply = {"to": m["from"], "parts": parts, "in_reply_to": m["id"], "metadata": {"a2a": meta}}
        if m.get("conversation_id"):
            reply["conversation_id"] = m["conversation_id"]
        try:
            api("POST", "/v1/messages", reply)
        except urllib.error.HTTPError as e:
            print("reply:", e.code, e.read()[:300], flush=True)


def agent():
    while True:
        try:
            got = api("GET", "/v1/inbox?wait_ms=5000")
        except Exception as e:  # the hub restarting: try again
            print("inbox:", e, flush=True)
            time.sleep(0.5)
            continue
        for m in got["messages"]:
            try:
                api("POST", "/v1/inbox/ack", {"ids": [m["id"]]})
            except Exception as e:
                print("ack:", e, flush=True)
            threading.Thread(target=answer, args=(m,), daemon=True).start()


threading.Thread(target=agent, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", PROXY_PORT), Proxy).serve_forever()
