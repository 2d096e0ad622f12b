"""Drives a Switchboard hub with the official A2A Python client (a2a-sdk), unmodified:
card, send, stream, get, list, cancel, and a push config whose authentication a loopback
receiver checks. The agent behind is this script too, through the ordinary Switchboard agent
API (inbox, ack, replies with the hub's metadata.a2a convention).

Usage: python a2a_client.py HUB AGENT_ID CALLER_KEY AGENT_KEY
Prints `ok <step>` per step; exits non-zero on the first failure."""
import asyncio, json, sys, threading, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from a2a.client import ClientConfig, create_client
from a2a.types import (CancelTaskRequest, DeleteTaskPushNotificationConfigRequest, GetTaskRequest,
                       ListTaskPushNotificationConfigsRequest, ListTasksRequest, Message, Part, Role,
                       SendMessageConfiguration, SendMessageRequest, TaskPushNotificationConfig, TaskState)
from a2a.types import AuthenticationInfo

HUB, AGENT, CALLER_KEY, AGENT_KEY = sys.argv[1:5]
pushed = []


def api(method, path, body=None):
    req = urllib.request.Request(HUB + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={"Authorization": "Bearer " + AGENT_KEY,
                                                         "content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read() or b"null")


def agent():
    """Answers `wait…` with nothing (a task to cancel), `stream…` with working then done,
    anything else with a completed reply."""
    while True:
        for m in api("GET", "/v1/inbox?wait_ms=2000")["messages"]:
            api("POST", "/v1/inbox/ack", {"ids": [m["id"]]})
            a2a = (m.get("metadata") or {}).get("a2a") or {}
            text = "".join(p.get("text", "") for p in m["parts"])
            if a2a.get("cancel") or text.startswith("wait"):
                continue
            steps = [("working", "on it"), ("completed", "done: " + text)] if text.startswith("stream") \
                else [("completed", "done: " + text)]
            for state, words in steps:
                api("POST", "/v1/messages", {"to": m["from"], "in_reply_to": m["id"],
                                             "conversation_id": m.get("conversation_id"),
                                             "parts": [{"kind": "text", "text": words}],
                                             "metadata": {"a2a": {"state": state}}})


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        pushed.append((self.headers.get("authorization"), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print("ok", what, flush=True)


def msg(text, mid):
    return Message(message_id=mid, role=Role.ROLE_USER, parts=[Part(text=text)])


async def main():
    threading.Thread(target=agent, daemon=True).start()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {CALLER_KEY}"}, timeout=60)
    client = await create_client(f"{HUB}/a2a/{AGENT}", client_config=ClientConfig(httpx_client=http, streaming=False),
                                 resolver_http_kwargs={"headers": {"Authorization": f"Bearer {CALLER_KEY}"}})
    card = await client.get_card() if hasattr(client, "get_card") else None
    check(card is None or card.name, "card")

    # Send (blocking): the completed task.
    events = [e async for e in client.send_message(SendMessageRequest(message=msg("hello", "py-1")))]
    task = events[-1].task
    check(task.status.state == TaskState.TASK_STATE_COMPLETED, "send")
    check("done: hello" in task.artifacts[0].parts[0].text, "send artifact")

    # Get.
    got = await client.get_task(GetTaskRequest(id=task.id))
    check(got.id == task.id and got.status.state == TaskState.TASK_STATE_COMPLETED, "get")

    # Stream.
    streaming = await create_client(f"{HUB}/a2a/{AGENT}", client_config=ClientConfig(httpx_client=http, streaming=True),
                                    resolver_http_kwargs={"headers": {"Authorization": f"Bearer {CALLER_KEY}"}})
    states = []
    async for e in streaming.send_message(SendMessageRequest(message=msg("stream it", "py-2"))):
        if e.HasField("status_update"):
            states.append(e.status_update.status.state)
        elif e.HasField("task"):
            states.append(e.task.status.state)
    check(states and states[-1] == TaskState.TASK_STATE_COMPLETED, f"stream {states}")

    # List.
    listed = await client.list_tasks(ListTasksRequest(page_size=10))
    check(len(listed.tasks) >= 2 and listed.total_size >= 2, "list")

    # Push config, then cancel: the receiver hears the cancel with the config's authentication.
    waiting = SendMessageRequest(message=msg("wait for me", "py-3"),
                                 configuration=SendMessageConfiguration(return_immediately=True))
    pending = [e async for e in client.send_message(waiting)][-1].task
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    cfg = TaskPushNotificationConfig(task_id=pending.id, id="py-cfg", url=url, token="py-token",
                                     authentication=AuthenticationInfo(scheme="Bearer", credentials="py-secret"))
    created = await client.create_task_push_notification_config(cfg)
    check(created.id == "py-cfg", "push config create")
    configs = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=pending.id))
    check(len(configs.configs) == 1, "push config list")
    canceled = await client.cancel_task(CancelTaskRequest(id=pending.id))
    check(canceled.status.state == TaskState.TASK_STATE_CANCELED, "cancel")
    for _ in range(100):
        if pushed:
            break
        await asyncio.sleep(0.1)
    check(pushed and pushed[0][0] == "Bearer py-secret", f"push received with its authentication {pushed[:1]}")
    check(pushed[0][1]["statusUpdate"]["status"]["state"] == "TASK_STATE_CANCELED", "push payload")
    await client.delete_task_push_notification_config(
        DeleteTaskPushNotificationConfigRequest(task_id=pending.id, id="py-cfg"))
    check(True, "push config delete")


asyncio.run(main())
