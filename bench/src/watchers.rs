//! Who watches a run through faults: `graphql-transport-ws` subscribers
//! that reconnect when their connection closes (as the graphql-ws client
//! does), and a webhook receiver.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::Res;

const SUBSCRIBE: &str =
    "subscription($id: ID!) { bulkTaskUpdated(id: $id) { version status counters { finished } } }";

const TERMINAL: [&str; 4] = [
    "COMPLETED",
    "COMPLETED_WITH_FAILURES",
    "FAILED",
    "CANCELLED",
];

/// What all subscribers saw together.
#[derive(Default)]
pub struct Watch {
    /// Subscribers that got a first event (the current state) at least once.
    pub subscribed: AtomicU64,
    pub saw_end: AtomicU64,
    pub reconnects: AtomicU64,
    pub version_went_back: AtomicU64,
    pub errors: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

enum Session {
    /// The terminal state arrived.
    Ended,
    /// The connection closed or failed first: connect again.
    Lost,
}

/// One subscriber: until it has seen the task terminal with `total` items
/// finished, or `deadline`.
pub async fn subscriber(
    addr: String,
    authorization: String,
    task_id: String,
    total: u64,
    watch: Arc<Watch>,
    deadline: Instant,
) {
    let mut version = -1;
    let mut first = true;
    while Instant::now() < deadline {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let session = session(
            &addr,
            &authorization,
            &task_id,
            total,
            &watch,
            &mut version,
            &mut first,
        );
        match tokio::time::timeout(remaining, session).await {
            Ok(Ok(Session::Ended)) => {
                watch.saw_end.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Ok(Session::Lost)) | Ok(Err(_)) => {
                watch.reconnects.fetch_add(1, Ordering::Relaxed);
                // graphql-ws waits a moment before it retries; so do we.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(_) => return,
        }
    }
}

async fn session(
    addr: &str,
    authorization: &str,
    task_id: &str,
    total: u64,
    watch: &Watch,
    version: &mut i64,
    first: &mut bool,
) -> Res<Session> {
    let mut ws = crate::client::ws_connect(addr, authorization).await?;
    let send = |v: Value| Message::text(v.to_string());
    while let Some(message) = ws.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(_) => return Ok(Session::Lost),
            _ => continue,
        };
        let v: Value = serde_json::from_str(&text)?;
        match v["type"].as_str() {
            Some("connection_ack") => {
                ws.send(send(json!({ "type": "subscribe", "id": "1", "payload": { "query": SUBSCRIBE, "variables": { "id": task_id } } })))
                    .await?;
            }
            Some("ping") => ws.send(send(json!({ "type": "pong" }))).await?,
            Some("next") => {
                let task = &v["payload"]["data"]["bulkTaskUpdated"];
                if task.is_null() {
                    // An error event (the database was away): the stream ends
                    // after it; the next session starts from the current state.
                    note(watch, &text);
                    continue;
                }
                if std::mem::take(first) {
                    watch.subscribed.fetch_add(1, Ordering::Relaxed);
                }
                let now = task["version"].as_i64().unwrap_or(-1);
                if now < *version {
                    watch.version_went_back.fetch_add(1, Ordering::Relaxed);
                }
                *version = now.max(*version);
                let status = task["status"].as_str().unwrap_or("");
                if TERMINAL.contains(&status)
                    && task["counters"]["finished"].as_u64() == Some(total)
                {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    return Ok(Session::Ended);
                }
            }
            // The server ended the stream without the terminal state: resubscribe.
            Some("complete") => return Ok(Session::Lost),
            Some("error") => {
                note(watch, &text);
                return Ok(Session::Lost);
            }
            _ => {}
        }
    }
    Ok(Session::Lost)
}

fn note(watch: &Watch, text: &str) {
    watch.errors.fetch_add(1, Ordering::Relaxed);
    watch
        .first_error
        .lock()
        .expect("lock")
        .get_or_insert_with(|| text.to_owned());
}

/// Webhook messages received: task global id -> statuses of its messages.
#[derive(Clone, Default)]
pub struct Receiver {
    pub by_task: Arc<Mutex<HashMap<String, Vec<String>>>>,
    pub messages: Arc<Mutex<HashSet<String>>>,
    pub received: Arc<AtomicU64>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    r.received.fetch_add(1, Ordering::Relaxed);
    r.messages.lock().expect("lock").insert(id);
    let task = v["data"]["id"].as_str().unwrap_or_default().to_owned();
    let status = v["data"]["status"].as_str().unwrap_or_default().to_owned();
    r.by_task
        .lock()
        .expect("lock")
        .entry(task)
        .or_default()
        .push(status);
    axum::http::StatusCode::NO_CONTENT
}

impl Receiver {
    /// Listens on a local port; the URL to register.
    pub async fn start() -> Res<(Receiver, String)> {
        let r = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok((r, url))
    }

    /// How many of `tasks` have a finish message with a terminal status.
    pub fn finished(&self, tasks: &[String]) -> usize {
        let by_task = self.by_task.lock().expect("lock");
        tasks
            .iter()
            .filter(|t| {
                by_task
                    .get(*t)
                    .is_some_and(|s| s.iter().any(|s| TERMINAL.contains(&s.as_str())))
            })
            .count()
    }
}
