"""An external A2A agent written with the official a2a-sdk server library, for the gateway
test (`crates/server/tests/a2a_gateway_sdk.rs`): it serves its Agent Card and a JSON-RPC
interface, and answers every message with a completed task whose artifact says
`echo: <text>`. It binds port 0 and prints `PORT <n>` once it listens, so the test needs no
fixed port.

Usage: python a2a_echo_agent.py
"""

import asyncio
import socket
import sys

import uvicorn
from starlette.applications import Starlette

from a2a.helpers.proto_helpers import get_message_text, new_task_from_user_message, new_text_artifact
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)


class Echo(AgentExecutor):
    """Answers with a completed task carrying one text artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = get_message_text(context.message)
        task = context.current_task or new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        await event_queue.enqueue_event(
            TaskArtifactUpdateEvent(
                task_id=task.id,
                context_id=task.context_id,
                artifact=new_text_artifact(name='echo', text=f'echo: {text}'),
            )
        )
        await event_queue.enqueue_event(
            TaskStatusUpdateEvent(
                task_id=task.id,
                context_id=task.context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED),
            )
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError('echo tasks finish at once')


def card(base: str) -> AgentCard:
    return AgentCard(
        name='sdk-echo',
        description='Echoes text (a2a-sdk server library)',
        version='1.0.0',
        supported_interfaces=[AgentInterface(url=f'{base}/a2a', protocol_binding='JSONRPC', protocol_version='1.0')],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=['text/plain'],
        default_output_modes=['text/plain'],
        skills=[AgentSkill(id='echo', name='Echo', description='Says it back', tags=['echo'])],
    )


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', 0))
    # Listening before the port is printed: a connection made at once waits in the backlog
    # until uvicorn accepts it.
    sock.listen(128)
    port = sock.getsockname()[1]
    agent_card = card(f'http://127.0.0.1:{port}')
    handler = DefaultRequestHandler(agent_executor=Echo(), task_store=InMemoryTaskStore(), agent_card=agent_card)
    routes = create_agent_card_routes(agent_card) + create_jsonrpc_routes(handler, rpc_url='/a2a')
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), log_level='warning'))
    print(f'PORT {port}', flush=True)
    await server.serve(sockets=[sock])


if __name__ == '__main__':
    asyncio.run(main())
    sys.exit(0)
