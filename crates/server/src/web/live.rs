//! `GET /live`: one Server-Sent Events stream per open page of a signed-in person. It says
//! `unread` (the count, as JSON `{"unread": n}`) when the page opens and whenever something
//! is committed for the person (the store's wake-up for `user:<id>`, which other nodes'
//! commits reach through `LISTEN`), and every few seconds besides, so statuses that expire
//! are seen to go. `app.js` updates the badge, shows a browser notification, and refreshes
//! the conversation or inbox on screen. The stream only reads: it neither leases nor
//! acknowledges anything.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::common::Visitor;
use crate::api::AppState;

/// How often the page is told to look again even without a wake-up (statuses expire).
const TICK: Duration = Duration::from_secs(3);

pub async fn live(State(state): State<AppState>, v: Visitor) -> Response {
    let (tenant, address) = (v.tenant().to_owned(), v.address());
    let mut woken = state.store.wakeups().subscribe((tenant.clone(), address.clone()));
    let mut shutdown = state.shutdown.clone();
    let (out, mut rx) = mpsc::channel::<Event>(4);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            woken.borrow_and_update();
            let unread = match state.store.person_unread(&tenant, &address).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "live updates could not count unread messages");
                    -1
                }
            };
            let event = Event::default().event("unread").data(format!("{{\"unread\":{unread}}}"));
            if out.send(event).await.is_err() {
                return; // the page was closed
            }
            tokio::select! {
                changed = woken.changed() => if changed.is_err() { return },
                _ = tick.tick() => {}
                _ = crate::shutdown::stopped(&mut shutdown) => return,
                _ = out.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>)));
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
