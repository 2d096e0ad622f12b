//! `/v1/stream` (WebSocket) and `/v1/events` (Server-Sent Events): messages pushed as their
//! commits land.
//!
//! A WebSocket connection leases messages to itself and holds at most `max_in_flight`
//! unacknowledged ones (like JetStream's `max_ack_pending`), so a slow consumer is not
//! flooded; acks arrive on the same socket and are committed in batches. SSE has no way back,
//! so its consumers ack with `POST /v1/inbox/ack`, and TCP back-pressure bounds what is sent.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, SinkExt, StreamExt};
use switchboard_core::Principal;
use switchboard_core::api::{InboxMessage, StreamFrame};
use switchboard_core::time::now_ms;
use switchboard_core::validate;
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{BadRequest, Forbidden, UpgradeRequired};
use crate::api::auth::Auth;
use crate::domain::delivery::{self, Consumer, Next};
use crate::error::ApiError;

/// Most messages leased in one go by a stream.
const LEASE_BATCH: usize = 256;
/// Most acks read off the socket before committing them together.
const ACK_BATCH: usize = 1024;

/// WebSocket stream of the caller's messages. Server → client: `{"type":"message", …}`;
/// client → server: `{"type":"ack","id":…}` or `{"type":"nack","id":…,"retry_in_ms":…}`.
#[utoipa::path(get, path = "/v1/stream", operation_id = "stream",
    responses((status = 101, description = "WebSocket of StreamFrame"),
              (status = 400, response = BadRequest), (status = 403, response = Forbidden),
              (status = 426, response = UpgradeRequired)))]
pub async fn websocket(
    State(state): State<AppState>,
    auth: Auth,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let agent = auth.require_inbox()?.to_string();
    let ws = ws.map_err(not_a_websocket)?;
    let slot = state.access.open_stream(&auth.0).await?;
    let consumer = state.deliveries.consumer(auth.0.clone(), state.shutdown.clone())?;
    // tungstenite's default buffers are 128 KiB each way per connection; idle consumers then
    // cost ~134 KiB apiece (measured: 1.36 GiB for 10,000). Frames here are small and the
    // buffers grow on demand, so start small.
    let ws = ws.read_buffer_size(4 * 1024).write_buffer_size(4 * 1024);
    Ok(ws.on_upgrade(move |socket| async move {
        let _slot = slot;
        if let Err(e) = run_socket(state, auth.0, consumer, socket).await {
            tracing::debug!(agent = %agent, error = %e, "stream closed");
        }
    }))
}

/// A plain HTTP request to `/v1/stream`, as a problem document (axum answers plain text).
fn not_a_websocket(why: WebSocketUpgradeRejection) -> ApiError {
    ApiError::UpgradeRequired(format!(
        "GET /v1/stream is a WebSocket endpoint and this request is not a WebSocket handshake ({}): connect with \
         a WebSocket client, or read messages over Server-Sent Events at GET /v1/events or by long-poll at \
         GET /v1/inbox",
        why.body_text()
    ))
}

#[derive(Debug, thiserror::Error)]
enum StreamEnd {
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
    #[error(transparent)]
    Api(#[from] ApiError),
}

fn frame_text(f: &StreamFrame) -> WsMessage {
    WsMessage::Text(serde_json::to_string(f).unwrap_or_default().into())
}

/// What a WebSocket waits for besides new work.
enum SocketEvent {
    Incoming(Option<Result<WsMessage, axum::Error>>),
    Ping,
}

async fn run_socket(
    state: AppState,
    by: Principal,
    mut consumer: Consumer,
    socket: WebSocket,
) -> Result<(), StreamEnd> {
    let (mut tx, mut rx) = socket.split();
    // Message id → lease expiry. Entries whose lease ran out no longer count against the
    // window: the message may have gone to another connection.
    let mut in_flight: HashMap<String, i64> = HashMap::new();
    let max = state.config.max_in_flight;
    let lease_ms = state.config.visibility_timeout_ms;
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    ping.tick().await;
    loop {
        let now = now_ms();
        in_flight.retain(|_, exp| *exp > now);
        let event = async {
            tokio::select! {
                incoming = rx.next() => SocketEvent::Incoming(incoming),
                _ = ping.tick() => SocketEvent::Ping,
            }
        };
        let next = if in_flight.len() < max {
            let room = (max - in_flight.len()).min(LEASE_BATCH);
            consumer.next(room, lease_ms, event).await?
        } else {
            consumer.wait(event).await
        };
        match next {
            Next::Leased(batch) => {
                let full = batch.len() == (max - in_flight.len()).min(LEASE_BATCH);
                for l in batch {
                    let frame = delivery::message_frame(&l)?;
                    in_flight.insert(l.message.id, l.lease_expires_at);
                    tx.feed(WsMessage::Text(frame.into())).await?;
                }
                tx.flush().await?;
                if full {
                    // More may be due: take acks that already arrived, then lease again.
                    if let Some(Some(first)) = rx.next().now_or_never() {
                        handle_incoming(&state, &by, first, &mut rx, &mut tx, &mut in_flight).await?;
                    }
                }
            }
            Next::Woken => {}
            Next::Other(SocketEvent::Incoming(Some(first))) => {
                handle_incoming(&state, &by, first, &mut rx, &mut tx, &mut in_flight).await?
            }
            Next::Other(SocketEvent::Incoming(None)) => return Ok(()),
            Next::Other(SocketEvent::Ping) => tx.send(WsMessage::Ping(Vec::new().into())).await?,
            Next::Stopped => {
                let _ = tx.send(WsMessage::Close(None)).await;
                return Ok(());
            }
        }
    }
}

const FRAME_HINT: &str = "send {\"type\":\"ack\",\"id\":\"…\"} or {\"type\":\"nack\",\"id\":\"…\"}";

/// A frame from the client, held to the string rule like any request body.
fn parse_frame(text: &str) -> Result<StreamFrame, String> {
    let frame = serde_json::from_str::<StreamFrame>(text).map_err(|_| FRAME_HINT.to_owned())?;
    match validate::strings(&frame).first() {
        None => Ok(frame),
        Some(e) => Err(format!("`{}` {}", e.path, e.message)),
    }
}

/// Reads this frame and every frame already waiting, then commits their acks together.
///
/// Acks already read are committed even when a later frame ends the stream (a socket error
/// or a failed reply): a consumer that acks and then drops its connection must not have
/// those acks forgotten and the messages delivered again.
async fn handle_incoming(
    state: &AppState,
    by: &Principal,
    first: Result<WsMessage, axum::Error>,
    rx: &mut futures_util::stream::SplitStream<WebSocket>,
    tx: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    in_flight: &mut HashMap<String, i64>,
) -> Result<(), StreamEnd> {
    let mut acks = Vec::new();
    let mut next = Some(first);
    let mut ended: Result<(), StreamEnd> = Ok(());
    while let Some(frame) = next.take() {
        let handled = handle_frame(state, by, frame, tx, in_flight, &mut acks).await;
        match handled {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                ended = Err(e);
                break;
            }
        }
        if acks.len() < ACK_BATCH
            && let Some(Some(f)) = rx.next().now_or_never()
        {
            next = Some(f);
        }
    }
    if !acks.is_empty() {
        state.deliveries.ack_unanswered(by, acks).await?;
    }
    ended
}

/// Handles one client frame; `false` when the client closed the stream.
async fn handle_frame(
    state: &AppState,
    by: &Principal,
    frame: Result<WsMessage, axum::Error>,
    tx: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    in_flight: &mut HashMap<String, i64>,
    acks: &mut Vec<String>,
) -> Result<bool, StreamEnd> {
    match frame? {
        WsMessage::Text(text) => match parse_frame(&text) {
            Ok(StreamFrame::Ack { id }) => {
                in_flight.remove(&id);
                acks.push(id);
            }
            Ok(StreamFrame::Nack { id, retry_in_ms }) => {
                in_flight.remove(&id);
                state.deliveries.nack(by, vec![id], retry_in_ms.unwrap_or(0)).await?;
            }
            Ok(_) => {
                let err = StreamFrame::Error { code: "invalid_frame".into(), detail: FRAME_HINT.into() };
                tx.send(frame_text(&err)).await?;
            }
            Err(detail) => {
                tx.send(frame_text(&StreamFrame::Error { code: "invalid_frame".into(), detail })).await?;
            }
        },
        WsMessage::Close(_) => return Ok(false),
        _ => {}
    }
    Ok(true)
}

/// Server-Sent Events stream of the caller's messages (`event: message`, data: the
/// `InboxMessage`). Acknowledge with `POST /v1/inbox/ack`.
#[utoipa::path(get, path = "/v1/events", operation_id = "events",
    responses((status = 200, description = "`event: message` per leased message, `data` an InboxMessage",
               content_type = "text/event-stream"),
              (status = 403, response = Forbidden)))]
pub async fn events(State(state): State<AppState>, auth: Auth) -> Result<Response, ApiError> {
    let agent = auth.require_inbox()?.to_string();
    let slot = state.access.open_stream(&auth.0).await?;
    let mut consumer = state.deliveries.consumer(auth.0, state.shutdown.clone())?;
    let lease_ms = state.config.visibility_timeout_ms;
    let (out, mut out_rx) = mpsc::channel::<InboxMessage>(64);
    tokio::spawn(async move {
        let _slot = slot;
        loop {
            let batch = match consumer.next(64, lease_ms, out.closed()).await {
                Ok(Next::Leased(batch)) => batch,
                Ok(Next::Woken) => continue,
                // The client went away (its leases will expire and redeliver), or the node stops.
                Ok(Next::Other(()) | Next::Stopped) => return,
                Err(e) => {
                    tracing::warn!(agent = %agent, error = %e, "events stream stopped");
                    return;
                }
            };
            for l in batch {
                let m = match delivery::inbox_view(l) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(agent = %agent, error = %e, "events stream stopped");
                        return;
                    }
                };
                if out.send(m).await.is_err() {
                    return; // the client went away; the leases will expire and redeliver
                }
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| out_rx.poll_recv(cx)).map(|m| {
        let event = Event::default().event("message").id(m.message.id.clone());
        Ok::<_, Infallible>(event.json_data(&m).unwrap_or_else(|_| Event::default().comment("unencodable")))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(websocket)).routes(routes!(events))
}
