//! A webhook receiver inside the test process (axum on port 0) and the
//! webhook operations as a client sends them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub headers: HeaderMap,
    pub body: String,
    pub json: Value,
    pub at: Instant,
    /// Whether the receiver answered 2xx.
    pub accepted: bool,
}

impl Received {
    /// Checks the signature with the Standard Webhooks library against `secret`.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        standardwebhooks::Webhook::new(secret)
            .map_err(|e| e.to_string())?
            .verify(self.body.as_bytes(), &self.headers)
            .map_err(|e| e.to_string())
    }
}

/// How the receiver answers the `nth` (from 0) request carrying a `webhook-id`.
pub type Answer = Arc<dyn Fn(&str, usize) -> (u16, Duration) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    answer: Answer,
}

pub struct Receiver {
    pub url: String,
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let nth = shared
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.id == id)
        .count();
    let (status, delay) = (shared.answer)(&id, nth);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    shared.received.lock().unwrap().push(Received {
        id,
        headers,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        body: text,
        at: Instant::now(),
        accepted: (200..300).contains(&status),
    });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// A receiver that answers 200 at once.
    pub async fn ok() -> Receiver {
        Receiver::start(|_, _| (200, Duration::ZERO)).await
    }

    pub async fn start(
        answer: impl Fn(&str, usize) -> (u16, Duration) + Send + Sync + 'static,
    ) -> Receiver {
        let shared = Shared {
            received: Arc::default(),
            answer: Arc::new(answer),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = shared.received.clone();
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(shared);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            received,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received; panics after `within`.
    pub async fn wait_until(
        &self,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get what was expected; it got {} requests: {:#?}",
                got.len(),
                got.iter().map(|r| &r.json).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `n` requests in all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_until(Duration::from_secs(20), |r| r.len() >= n)
            .await
    }
}

pub const ENDPOINT: &str = "id url description events types enabled createdAt disabledReason";
pub const DELIVERY: &str = "id event task { id version status } taskVersion status attempts nextAttemptAt \
    lastResponseStatus lastResponseBody lastError lastDurationMs createdAt deliveredAt";

impl TestApp {
    /// `createWebhookEndpoint`; returns `(endpoint, secret)`.
    pub async fn create_endpoint(&self, input: Value) -> (Value, String) {
        let query = format!(
            "mutation($input: CreateWebhookEndpointInput!) {{ createWebhookEndpoint(input: $input) {{ \
             secret endpoint {{ {ENDPOINT} }} }} }}"
        );
        let payload =
            self.data(&query, json!({ "input": input })).await["createWebhookEndpoint"].clone();
        let secret = payload["secret"].as_str().unwrap().to_owned();
        (payload["endpoint"].clone(), secret)
    }

    /// An endpoint at `url` for `events` (names); returns `(id, secret)`.
    pub async fn endpoint_for(&self, url: &str, events: &[&str]) -> (String, String) {
        let (endpoint, secret) = self
            .create_endpoint(json!({ "url": url, "events": events }))
            .await;
        (endpoint["id"].as_str().unwrap().to_owned(), secret)
    }

    /// `createWebhookEndpoint` that must fail; returns the error code and message.
    pub async fn create_endpoint_error(&self, input: Value) -> (String, String) {
        let body = self
            .post(
                "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }",
                json!({ "input": input }),
            )
            .await;
        (
            body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("{body:#}"))
                .to_owned(),
            body["errors"][0]["message"].as_str().unwrap().to_owned(),
        )
    }

    /// An endpoint with its deliveries, newest first.
    pub async fn endpoint(&self, id: &str) -> Value {
        let query = format!(
            "query($id: ID!) {{ node(id: $id) {{ ... on WebhookEndpoint {{ {ENDPOINT} \
             deliveries(first: 100) {{ nodes {{ {DELIVERY} }} }} }} }} }}"
        );
        self.data(&query, json!({ "id": id })).await["node"].clone()
    }

    /// The deliveries of an endpoint, oldest first.
    pub async fn deliveries(&self, endpoint: &str) -> Vec<Value> {
        let mut list = self.endpoint(endpoint).await["deliveries"]["nodes"]
            .as_array()
            .unwrap()
            .clone();
        list.reverse();
        list
    }

    /// Waits until every delivery of `endpoint` satisfies `done` (and there are `n`).
    pub async fn wait_deliveries(
        &self,
        endpoint: &str,
        n: usize,
        done: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.deliveries(endpoint).await;
            if list.len() == n && list.iter().all(&done) {
                return list;
            }
            assert!(
                Instant::now() < deadline,
                "deliveries did not settle: {list:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reports every item of `task` SUCCEEDED by index (`n` items).
    pub async fn finish_task(&self, task: &str, n: usize) -> Value {
        let results: Vec<Value> = (0..n)
            .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
            .collect();
        self.report_all(task, json!(results)).await["task"].clone()
    }
}
