//! What the hub streams back: the WebSocket and SSE streams of messages, and the audit
//! export, read as they arrive.

use futures_util::{SinkExt, StreamExt};
use switchboard_core::api::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::{ClientError, Result};

pub(crate) type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket stream of an agent's messages.
pub struct Stream {
    pub(crate) ws: WsStream,
}

impl Stream {
    /// The next message, or `None` when the hub closed the stream.
    pub async fn next_message(&mut self) -> Result<Option<InboxMessage>> {
        while let Some(frame) = self.ws.next().await {
            let frame = frame.map_err(|e| ClientError::Stream(e.to_string()))?;
            match frame {
                WsMessage::Text(t) => match serde_json::from_str::<StreamFrame>(t.as_str()) {
                    Ok(StreamFrame::Message(m)) => return Ok(Some(m)),
                    Ok(StreamFrame::Error { code, detail }) => {
                        return Err(ClientError::Stream(format!("{code}: {detail}")));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(ClientError::Protocol(format!("stream frame: {e}"))),
                },
                WsMessage::Close(_) => return Ok(None),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Acknowledges a message received on this stream.
    pub async fn ack(&mut self, id: &str) -> Result<()> {
        self.send(&StreamFrame::Ack { id: id.to_owned() }).await
    }

    /// Queues an ack without flushing; call [`Stream::flush`] after a batch.
    pub async fn feed_ack(&mut self, id: &str) -> Result<()> {
        let text = serde_json::to_string(&StreamFrame::Ack { id: id.to_owned() }).unwrap_or_default();
        self.ws.feed(WsMessage::text(text)).await.map_err(|e| ClientError::Stream(e.to_string()))
    }

    /// Sends queued frames.
    pub async fn flush(&mut self) -> Result<()> {
        self.ws.flush().await.map_err(|e| ClientError::Stream(e.to_string()))
    }

    /// Gives a message back for redelivery.
    pub async fn nack(&mut self, id: &str, retry_in_ms: Option<u64>) -> Result<()> {
        self.send(&StreamFrame::Nack { id: id.to_owned(), retry_in_ms }).await
    }

    async fn send(&mut self, f: &StreamFrame) -> Result<()> {
        let text = serde_json::to_string(f).unwrap_or_default();
        self.ws.send(WsMessage::text(text)).await.map_err(|e| ClientError::Stream(e.to_string()))
    }

    /// Closes the stream; unacknowledged messages are redelivered after their lease.
    pub async fn close(mut self) -> Result<()> {
        self.ws.close(None).await.map_err(|e| ClientError::Stream(e.to_string()))
    }
}

pub(crate) type ByteStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An audit log export as it arrives: one entry per line, in `seq` order.
pub struct AuditExport {
    pub(crate) body: ByteStream,
    pub(crate) buf: Vec<u8>,
    pub(crate) done: bool,
}

impl AuditExport {
    /// The next line as the hub sent it (without its newline), or `None` at the end of the
    /// log. A connection that ends inside a line, or with an error, is an error: the export
    /// is incomplete.
    pub async fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
                return String::from_utf8(line)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol(format!("audit export: a line is not UTF-8: {e}")));
            }
            if self.done {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(ClientError::Protocol("audit export: the last line has no end".into()));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(ClientError::Stream(format!("audit export cut short: {e}"))),
                None => self.done = true,
            }
        }
    }

    /// The next entry, or `None` at the end of the log.
    pub async fn next_event(&mut self) -> Result<Option<AuditEvent>> {
        let Some(line) = self.next_line().await? else { return Ok(None) };
        serde_json::from_str(&line).map(Some).map_err(|e| ClientError::Protocol(format!("audit export: {e}")))
    }
}

/// The Server-Sent Events stream of an agent's messages. Ack with [`Client::ack`].
pub struct EventStream {
    pub(crate) body: ByteStream,
    pub(crate) buf: String,
}

impl EventStream {
    /// The next message, or `None` when the hub closed the stream.
    pub async fn next_message(&mut self) -> Result<Option<InboxMessage>> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let mut name = "message";
                let mut data = String::new();
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if name == "message" && !data.is_empty() {
                    return serde_json::from_str(&data)
                        .map(Some)
                        .map_err(|e| ClientError::Protocol(format!("event data: {e}")));
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                Some(Err(e)) => return Err(ClientError::Stream(e.to_string())),
                None => return Ok(None),
            }
        }
    }
}
