"""Drives Switchboard's /mcp with the official `mcp` Python client, unmodified.

Run by crates/server/tests/mcp_python.rs, which starts the hub and passes what it set up as
JSON on the command line: the URL, agent A's and agent B's keys and ids, a person's user id
(an approval decider), and a conversation of A and B. For each protocol revision given
(`legacy` = the 2025-11-25 initialize handshake with a session; `2026-07-28` = stateless, after
`server/discover`), it lists the tools and calls each one, lists and reads the resources and
prompts, and checks a tool error. Prints `ok <mode> <negotiated version> <tools called>` per
revision; any failed check raises (exit status 1).
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

EXPECTED_TOOLS = {
    "send_message", "request", "read_inbox", "ack", "list_agents", "find_agents",
    "request_approval", "get_message", "list_conversations", "read_conversation",
}


def connect(setup, key, mode):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return Client(streamable_http_client(setup["url"] + "/mcp", http_client=http), mode=mode)


def structured(result, what):
    assert not result.is_error, f"{what}: {result.content}"
    assert result.structured_content is not None, f"{what}: no structured content"
    return result.structured_content


async def run(setup, mode):
    called = set()
    async with connect(setup, setup["a_key"], mode) as a, connect(setup, setup["b_key"], mode) as b:
        version = a.protocol_version
        if mode != "legacy":
            assert version == mode, version

        tools = await a.list_tools()
        names = {t.name for t in tools.tools}
        assert names == EXPECTED_TOOLS, names
        for t in tools.tools:
            assert t.input_schema["type"] == "object", t

        async def call(client, name, args):
            called.add(name)
            return await client.call_tool(name, args)

        # send_message, then B reads, A inspects, B acknowledges.
        to_b = f"agent:{setup['b_id']}"
        sent = structured(await call(a, "send_message", {"to": to_b, "text": f"hello over {mode}"}), "send_message")
        inbox = structured(await call(b, "read_inbox", {"wait_ms": 5000}), "read_inbox")
        got = [m for m in inbox["messages"] if m["id"] == sent["id"]]
        assert got and got[0]["parts"][0]["text"] == f"hello over {mode}", inbox
        shown = structured(await call(a, "get_message", {"id": sent["id"]}), "get_message")
        assert shown["message"]["id"] == sent["id"], shown
        acked = structured(await call(b, "ack", {"ids": [m["id"] for m in inbox["messages"]]}), "ack")
        assert sent["id"] in acked["ids"], acked

        # request: the Rust side runs an `echo` agent that answers every message.
        answer = structured(await call(a, "request", {"to": "capability:echo", "text": "ping", "timeout_ms": 10000}), "request")
        assert answer["reply"]["parts"][0]["text"] == "echo: ping", answer

        agents = structured(await call(a, "list_agents", {}), "list_agents")
        assert len(agents["agents"]) == 3, agents
        found = structured(await call(a, "find_agents", {"capability": "echo"}), "find_agents")
        assert [x["name"] for x in found["agents"]] == ["echoer"], found

        approval = structured(await call(a, "request_approval", {
            "question": "Ship it?",
            "options": [{"id": "yes", "label": "Ship"}, {"id": "no", "label": "Hold"}],
            "deciders": [f"user:{setup['person_id']}"],
            "default_outcome": "no",
            "expires_in_seconds": 600,
        }), "request_approval")
        assert approval["approval"]["state"] == "pending", approval

        conversations = structured(await call(a, "list_conversations", {}), "list_conversations")
        assert setup["conversation_id"] in [c["id"] for c in conversations["conversations"]], conversations
        history = structured(await call(a, "read_conversation", {"conversation_id": setup["conversation_id"]}), "read_conversation")
        assert history["messages"][0]["parts"][0]["text"] == "welcome", history

        # A tool error is a result the model can read, naming what to fix.
        refused = await a.call_tool("send_message", {"to": to_b})
        assert refused.is_error and "`text`" in refused.content[0].text, refused

        # Resources: the caller's conversations, and the templates.
        resources = await a.list_resources()
        uri = f"switchboard://conversations/{setup['conversation_id']}"
        assert uri in [str(r.uri) for r in resources.resources], resources
        read = await a.read_resource(uri)
        body = json.loads(read.contents[0].text)
        assert body["conversation"]["id"] == setup["conversation_id"], body
        templates = await a.list_resource_templates()
        assert {t.uri_template for t in templates.resource_templates} == {
            "switchboard://conversations/{id}", "switchboard://messages/{id}"}, templates

        prompts = await a.list_prompts()
        assert [p.name for p in prompts.prompts] == ["handle_inbox", "ask_capability"], prompts
        prompt = await a.get_prompt("ask_capability", {"capability": "echo", "question": "hi?"})
        assert "capability:echo" in prompt.messages[0].content.text, prompt

    assert called == EXPECTED_TOOLS, EXPECTED_TOOLS - called
    print(f"ok {mode} {version} {len(called)}", flush=True)


async def main():
    setup = json.loads(sys.argv[1])
    for mode in setup["modes"]:
        await run(setup, mode)


asyncio.run(main())
