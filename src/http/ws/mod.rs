//! GraphQL over WebSocket: the `graphql-transport-ws` protocol, to the letter
//! of its PROTOCOL.md (close codes included), and the legacy `graphql-ws`
//! (subscriptions-transport-ws) protocol.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_graphql::Request;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::Http;
use super::fanout::Key;
use crate::auth::{self, Auth};
use crate::error::AppError;

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";
/// GraphQL frames are small; the stock 128 KiB read buffer per connection
/// would cost 1.3 GB at 10,000 watchers.
mod frames;

use frames::{error_frame, forward, forward_shared, send};

const BUFFER: usize = 4 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    Legacy,
}

/// Answers a WebSocket upgrade on `/graphql`.
pub(super) fn upgrade(http: Http, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let offered: Vec<String> = ws
        .requested_protocols()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .collect();
    let protocol = if offered.iter().any(|p| p == TRANSPORT_WS) || offered.is_empty() {
        Protocol::TransportWs
    } else if offered.iter().any(|p| p == LEGACY_WS) {
        Protocol::Legacy
    } else {
        Protocol::TransportWs
    };
    let mut ws = ws
        .read_buffer_size(BUFFER)
        .write_buffer_size(BUFFER)
        .max_message_size(http.app.config.ws_max_message)
        .max_frame_size(http.app.config.ws_max_message);
    if !offered.is_empty() {
        let name = if protocol == Protocol::Legacy {
            LEGACY_WS
        } else {
            TRANSPORT_WS
        };
        ws.set_selected_protocol(HeaderValue::from_static(name));
    }
    let header_auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ws.on_upgrade(move |socket| async move {
        http.ws_connections.fetch_add(1, Ordering::Relaxed);
        Connection::new(http.clone(), protocol, header_auth)
            .run(socket)
            .await;
        http.ws_connections.fetch_sub(1, Ordering::Relaxed);
    })
}

enum Outgoing {
    Text(String),
    Close(u16, &'static str),
}

struct Connection {
    http: Http,
    protocol: Protocol,
    header_auth: Option<String>,
    init_received: bool,
    auth: Option<Auth>,
    /// Running operations by id, each with the serial number of its start,
    /// so a late "done" of an old operation cannot remove a new one.
    active: HashMap<String, (u64, AbortHandle)>,
    started: u64,
}

/// How the reader loop goes on.
enum Next {
    Continue,
    Close(u16, &'static str),
}

/// Why a connection was refused, and what to send instead.
const FORBIDDEN: &str =
    "Forbidden: send a valid key as {\"Authorization\": \"Bearer bw_...\"} in connection_init";

impl Connection {
    fn new(http: Http, protocol: Protocol, header_auth: Option<String>) -> Self {
        Connection {
            http,
            protocol,
            header_auth,
            init_received: false,
            auth: None,
            active: HashMap::new(),
            started: 0,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut incoming) = socket.split();
        let (out, mut outbox) = mpsc::channel::<Outgoing>(32);
        let writer = tokio::spawn(async move {
            while let Some(message) = outbox.recv().await {
                let result = match message {
                    Outgoing::Text(text) => sink.send(Message::Text(Utf8Bytes::from(text))).await,
                    Outgoing::Close(code, reason) => {
                        let frame = CloseFrame {
                            code,
                            reason: Utf8Bytes::from_static(reason),
                        };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                };
                if result.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, u64)>();
        // Legacy clients drop a connection that sends no keep-alive for 30 s.
        let mut keep_alive = tokio::time::interval(Duration::from_secs(15));
        keep_alive.tick().await;
        let mut shutdown = self.http.shutdown.clone();
        let init_deadline = tokio::time::sleep(Duration::from_millis(
            self.http.app.config.ws_init_timeout_ms,
        ));
        tokio::pin!(init_deadline);
        let close = loop {
            let next = tokio::select! {
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), &out, &done_tx).await,
                    Some(Ok(Message::Binary(_))) => Next::Close(4400, "Binary messages are not supported"),
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Ok(_)) => Next::Continue,
                    Some(Err(e)) => {
                        let too_big = e.to_string().contains("too long") || e.to_string().contains("too big");
                        break too_big.then_some((1009, "Message too big"));
                    }
                },
                Some((id, serial)) = done_rx.recv() => {
                    if self.active.get(&id).is_some_and(|(s, _)| *s == serial) {
                        self.active.remove(&id);
                    }
                    Next::Continue
                }
                _ = keep_alive.tick(), if self.protocol == Protocol::Legacy && self.auth.is_some() => {
                    send(&out, json!({ "type": "ka" })).await
                }
                _ = &mut init_deadline, if !self.init_received => Next::Close(4408, "Connection initialisation timeout"),
                _ = shutdown.changed() => Next::Close(1001, "The server is shutting down"),
            };
            if let Next::Close(code, reason) = next {
                break Some((code, reason));
            }
        };
        for (_, (_, handle)) in self.active.drain() {
            handle.abort();
        }
        if let Some((code, reason)) = close {
            let _ = out.send(Outgoing::Close(code, reason)).await;
        }
        drop(out);
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    }

    async fn on_text(
        &mut self,
        text: &str,
        out: &mpsc::Sender<Outgoing>,
        done: &mpsc::UnboundedSender<(String, u64)>,
    ) -> Next {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Next::Close(4400, "Invalid message: not JSON");
        };
        let Some(kind) = message.get("type").and_then(Value::as_str) else {
            return Next::Close(4400, "Invalid message: no type");
        };
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        match (self.protocol, kind) {
            (_, "connection_init") => self.on_init(message.get("payload"), out).await,
            (Protocol::TransportWs, "ping") => {
                let mut pong = json!({ "type": "pong" });
                if let Some(payload) = message.get("payload") {
                    pong["payload"] = payload.clone();
                }
                send(out, pong).await
            }
            (Protocol::TransportWs, "pong") => Next::Continue,
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let Some(id) = id.filter(|i| !i.is_empty()) else {
                    return Next::Close(4400, "Invalid message: subscribe needs an id");
                };
                self.on_subscribe(id, message.get("payload"), out, done)
                    .await
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                if let Some((_, handle)) = id.and_then(|id| self.active.remove(&id)) {
                    handle.abort();
                }
                Next::Continue
            }
            (Protocol::Legacy, "connection_terminate") => Next::Close(1000, "Normal closure"),
            _ => Next::Close(4400, "Invalid message: unknown type"),
        }
    }

    /// A close reason is at most 123 bytes: room for the next step only.
    async fn on_init(&mut self, payload: Option<&Value>, out: &mpsc::Sender<Outgoing>) -> Next {
        if self.init_received {
            return Next::Close(4429, "Too many initialisation requests");
        }
        self.init_received = true;
        let from_payload = payload
            .and_then(|p| p.get("Authorization").or_else(|| p.get("authorization")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let presented = from_payload.or_else(|| self.header_auth.clone());
        match auth::authenticate(&self.http.app.db, &self.http.app.keys, presented.as_deref()).await
        {
            Ok(Auth::Valid(principal)) => {
                self.auth = Some(Auth::Valid(principal));
                let next = send(out, json!({ "type": "connection_ack" })).await;
                if self.protocol == Protocol::Legacy {
                    return send(out, json!({ "type": "ka" })).await;
                }
                next
            }
            Ok(_) => {
                if self.protocol == Protocol::Legacy {
                    let _ = send(
                        out,
                        json!({ "type": "connection_error", "payload": { "message": FORBIDDEN } }),
                    )
                    .await;
                }
                Next::Close(4403, FORBIDDEN)
            }
            Err(e) => {
                tracing::error!(error = ?e, "authenticating a WebSocket");
                Next::Close(1011, "The database is unavailable")
            }
        }
    }

    async fn on_subscribe(
        &mut self,
        id: String,
        payload: Option<&Value>,
        out: &mpsc::Sender<Outgoing>,
        done: &mpsc::UnboundedSender<(String, u64)>,
    ) -> Next {
        let Some(Auth::Valid(principal)) = self.auth else {
            return Next::Close(4401, "Unauthorized");
        };
        // An operation that has just ended frees its id, even before its
        // "done" reached this loop.
        if self
            .active
            .get(&id)
            .is_some_and(|(_, handle)| !handle.is_finished())
        {
            return Next::Close(4409, "Subscriber for this id already exists");
        }
        if self.active.len() >= self.http.app.config.ws_max_subscriptions {
            return Next::Close(1008, "Too many subscriptions on one connection");
        }
        let payload = payload.filter(|p| p.get("query").is_some_and(Value::is_string));
        let Some(request) = payload.and_then(|p| serde_json::from_value::<Request>(p.clone()).ok())
        else {
            return Next::Close(
                4400,
                "Invalid message: subscribe needs a GraphQL request payload",
            );
        };
        // Over a rate limit, this operation alone ends with an error: the
        // socket and its other subscriptions go on.
        if let Err(refusal) = self.http.app.limits.admit(&principal) {
            let errors = json!([AppError::RateLimited(refusal).to_graphql_error()]);
            let _ = out.send(error_frame(&id, self.protocol, &errors)).await;
            return Next::Continue;
        }
        let shared_key = Key::of(&request, &principal);
        let executor = self.http.graphql.clone();
        let execute = move || executor.execute_stream(request, principal);
        self.started += 1;
        let serial = self.started;
        let (out, done, protocol, key) = (out.clone(), done.clone(), self.protocol, id.clone());
        let task = match shared_key {
            Some(shared_key) => {
                let shared = self.http.fanout.join(shared_key, execute);
                tokio::spawn(async move {
                    forward_shared(&shared, &id, protocol, &out).await;
                    let _ = done.send((id, serial));
                })
            }
            None => {
                let stream = execute();
                tokio::spawn(async move {
                    forward(stream, &id, protocol, &out).await;
                    let _ = done.send((id, serial));
                })
            }
        };
        self.active.insert(key, (serial, task.abort_handle()));
        Next::Continue
    }
}
