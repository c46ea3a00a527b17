//! A small GraphQL-over-WebSocket client for the tests: connects to
//! `/graphql` with either subprotocol, sends `connection_init`, `subscribe`
//! and `complete`, and reads messages with a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::TestApp;

// ---------------------------------------------------------------------------
// A small GraphQL-over-WebSocket client
// ---------------------------------------------------------------------------

pub const TRANSPORT: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";
/// How long a test waits for one message before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the client read from the socket.
#[derive(Debug)]
#[allow(dead_code)] // fields are shown through Debug in failure messages
pub enum Received {
    /// A text message, parsed as JSON.
    Message(Value),
    /// A close frame (code, reason), or `None` when the stream ended without one.
    Closed(Option<(u16, String)>),
    /// A transport error.
    Failed(String),
}

#[derive(Default)]
pub struct ConnectOptions {
    /// An `Authorization` header on the upgrade request.
    pub authorization: Option<String>,
    /// SO_RCVBUF of the client socket (a small one makes a slow reader).
    pub recv_buffer: Option<u32>,
}

pub struct Ws {
    socket: WebSocketStream<TcpStream>,
    protocol: &'static str,
    /// Legacy keep-alive (`ka`) messages are skipped unless this is false.
    pub skip_ka: bool,
    /// Everything sent and received, for failure messages.
    trace: Vec<String>,
    /// The last text message exactly as it arrived (parsing loses key order).
    pub last_text: String,
}

fn short(text: &str) -> String {
    if text.len() <= 400 {
        return text.to_owned();
    }
    let mut end = 400;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

impl Ws {
    /// Opens a WebSocket on the app's `/graphql` offering `protocol`.
    pub async fn connect(app: &TestApp, protocol: &'static str) -> Ws {
        Ws::connect_to(&app.address, protocol, ConnectOptions::default()).await
    }

    /// Opens a WebSocket on `http://HOST:PORT`'s `/graphql` offering `protocol`.
    pub async fn connect_to(address: &str, protocol: &'static str, options: ConnectOptions) -> Ws {
        let host = address.trim_start_matches("http://");
        let url = format!("ws://{host}/graphql");
        let mut request = url
            .as_str()
            .into_client_request()
            .expect("a WebSocket request");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        if let Some(authorization) = options.authorization {
            request
                .headers_mut()
                .insert("Authorization", authorization.parse().unwrap());
        }
        let addr: SocketAddr = host.parse().expect("an IP address and port");
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = options.recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let stream = socket.connect(addr).await.expect("the server accepts TCP");
        let (socket, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("the server upgrades to a WebSocket");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server selects the offered subprotocol"
        );
        Ws {
            socket,
            protocol,
            last_text: String::new(),
            skip_ka: true,
            trace: vec![format!("connected with {protocol}")],
        }
    }

    pub fn trace(&self) -> String {
        let from = self.trace.len().saturating_sub(60);
        self.trace[from..].join("\n")
    }

    pub async fn send_message(&mut self, message: Message) {
        self.trace
            .push(format!("> {}", short(&format!("{message:?}"))));
        if let Err(e) = self.socket.send(message).await {
            self.trace.push(format!("send failed: {e}"));
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.trace.push(format!("> {}", short(text)));
        if let Err(e) = self.socket.send(Message::text(text.to_owned())).await {
            self.trace.push(format!("send failed: {e}"));
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    /// The next thing the server says within `wait`; `None` on timeout.
    pub async fn recv(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match frame {
                None => {
                    self.trace.push("< end of stream".into());
                    return Some(Received::Closed(None));
                }
                Some(Err(e)) => {
                    self.trace.push(format!("< error: {e}"));
                    return Some(Received::Failed(e.to_string()));
                }
                Some(Ok(Message::Text(text))) => {
                    self.trace.push(format!("< {}", short(text.as_str())));
                    self.last_text = text.to_string();
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("the server sent non-JSON text ({e}): {}", self.trace())
                    });
                    if self.protocol == LEGACY && self.skip_ka && value["type"] == "ka" {
                        continue;
                    }
                    return Some(Received::Message(value));
                }
                Some(Ok(Message::Close(frame))) => {
                    let frame = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    self.trace.push(format!("< close {frame:?}"));
                    return Some(Received::Closed(frame));
                }
                Some(Ok(other)) => self
                    .trace
                    .push(format!("< {}", short(&format!("{other:?}")))),
            }
        }
    }

    /// The next message; fails on close, error or timeout.
    pub async fn next_message(&mut self) -> Value {
        self.next_message_within(WAIT).await
    }

    pub async fn next_message_within(&mut self, wait: Duration) -> Value {
        match self.recv(wait).await {
            Some(Received::Message(value)) => value,
            Some(other) => panic!(
                "expected a message, got {other:?}; trace:\n{}",
                self.trace()
            ),
            None => panic!("no message within {wait:?}; trace:\n{}", self.trace()),
        }
    }

    /// Sends `connection_init` with `payload` (no payload when `Null`).
    pub async fn send_init(&mut self, payload: Value) {
        let mut message = json!({ "type": "connection_init" });
        if !payload.is_null() {
            message["payload"] = payload;
        }
        self.send(message).await;
    }

    /// Initialises the connection with `key` and waits for the ack.
    pub async fn init(&mut self, key: &str) {
        self.send_init(json!({ "Authorization": format!("Bearer {key}") }))
            .await;
        let ack = self.next_message().await;
        assert_eq!(
            ack["type"],
            json!("connection_ack"),
            "expected connection_ack; trace:\n{}",
            self.trace()
        );
    }

    pub fn next_type(&self) -> &'static str {
        if self.protocol == LEGACY {
            "data"
        } else {
            "next"
        }
    }

    /// Starts an operation (`subscribe`, legacy `start`).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == LEGACY {
            "start"
        } else {
            "subscribe"
        };
        self.send(json!({
            "id": id,
            "type": kind,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// Ends an operation from the client side (`complete`, legacy `stop`).
    pub async fn stop(&mut self, id: &str) {
        let kind = if self.protocol == LEGACY {
            "stop"
        } else {
            "complete"
        };
        self.send(json!({ "id": id, "type": kind })).await;
    }

    /// The next message must be a result of operation `id` without errors; returns its `data`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.next_message().await;
        self.data_of(&message, id)
    }

    pub fn data_of(&self, message: &Value, id: &str) -> Value {
        assert!(
            message["type"] == self.next_type() && message["id"] == id,
            "expected a result of {id}, got {message}; trace:\n{}",
            self.trace()
        );
        assert!(
            message["payload"].get("errors").is_none(),
            "unexpected errors in {message}; trace:\n{}",
            self.trace()
        );
        message["payload"]["data"].clone()
    }

    /// The next message must be `complete` for `id`.
    pub async fn expect_complete(&mut self, id: &str) {
        let message = self.next_message().await;
        assert_eq!(
            message,
            json!({ "type": "complete", "id": id }),
            "expected the end of {id}; trace:\n{}",
            self.trace()
        );
    }

    /// The next message must be an `error` for `id`; returns its errors as a list.
    pub async fn expect_error(&mut self, id: &str) -> Vec<Value> {
        let message = self.next_message().await;
        assert!(
            message["type"] == "error" && message["id"] == id,
            "expected an error for {id}, got {message}; trace:\n{}",
            self.trace()
        );
        match &message["payload"] {
            Value::Array(errors) if self.protocol == TRANSPORT => errors.clone(),
            Value::Object(_) if self.protocol == LEGACY => vec![message["payload"].clone()],
            other => panic!(
                "a malformed error payload {other}; trace:\n{}",
                self.trace()
            ),
        }
    }

    /// Reads (and records) messages until a close frame, which must carry `code`; returns its reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        loop {
            match self.recv(WAIT).await {
                Some(Received::Message(_)) => continue,
                Some(Received::Closed(Some((got, reason)))) => {
                    assert_eq!(
                        got,
                        code,
                        "closed with {got} ({reason:?}), expected {code}; trace:\n{}",
                        self.trace()
                    );
                    return reason;
                }
                other => panic!(
                    "expected close {code}, got {other:?}; trace:\n{}",
                    self.trace()
                ),
            }
        }
    }

    /// Nothing arrives within `wait`.
    pub async fn expect_quiet(&mut self, wait: Duration) {
        if let Some(got) = self.recv(wait).await {
            panic!("expected silence, got {got:?}; trace:\n{}", self.trace());
        }
    }

    /// Sends `ping` and expects `pong` (echoing `payload`) as the next message.
    pub async fn ping(&mut self, payload: Option<Value>) {
        let mut ping = json!({ "type": "ping" });
        if let Some(p) = &payload {
            ping["payload"] = p.clone();
        }
        self.send(ping).await;
        let pong = self.next_message().await;
        assert_eq!(pong["type"], json!("pong"), "trace:\n{}", self.trace());
        if let Some(p) = payload {
            assert_eq!(
                pong["payload"],
                p,
                "pong echoes the payload; trace:\n{}",
                self.trace()
            );
        }
    }

    /// `bulkTaskUpdated` snapshots of `id` until the operation completes;
    /// asserts that `version` strictly increases.
    pub async fn snapshots_until_complete(&mut self, id: &str) -> Vec<Value> {
        let mut snapshots = Vec::new();
        loop {
            let message = self.next_message().await;
            if message == json!({ "type": "complete", "id": id }) {
                break;
            }
            let data = self.data_of(&message, id);
            snapshots.push(data["bulkTaskUpdated"].clone());
        }
        self.assert_versions_increase(&snapshots);
        snapshots
    }

    /// Reads `bulkTaskUpdated` snapshots of `id` until one satisfies `done`;
    /// returns them all (versions strictly increasing).
    pub async fn snapshots_until(&mut self, id: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut snapshots = Vec::new();
        loop {
            let data = self.next_data(id).await;
            let task = data["bulkTaskUpdated"].clone();
            let stop = done(&task);
            snapshots.push(task);
            if stop {
                break;
            }
        }
        self.assert_versions_increase(&snapshots);
        snapshots
    }

    pub fn assert_versions_increase(&self, snapshots: &[Value]) {
        let versions: Vec<i64> = snapshots
            .iter()
            .map(|s| s["version"].as_i64().expect("a version"))
            .collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "versions must strictly increase: {versions:?}; trace:\n{}",
            self.trace()
        );
    }
}
