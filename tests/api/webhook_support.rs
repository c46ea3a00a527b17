//! A webhook receiver inside the test process (axum on port 0) and the
//! webhook operations as a client sends them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::TestApp;

/// How far `webhook-timestamp` may be from now: the spec's five minutes.
const TOLERANCE_SECS: i64 = 5 * 60;

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
    /// Checks the signature against `secret` twice: with the Standard
    /// Webhooks library (the one the server signs with), and by hand from
    /// the spec (`verify_by_hand`). The two must agree.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let library = standardwebhooks::Webhook::new(secret)
            .map_err(|e| e.to_string())
            .and_then(|webhook| {
                webhook
                    .verify(self.body.as_bytes(), &self.headers)
                    .map_err(|e| e.to_string())
            });
        match (library, self.verify_by_hand(secret)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(library), Err(by_hand)) => Err(format!("{library}; by hand: {by_hand}")),
            (library, by_hand) => panic!(
                "the standardwebhooks library ({library:?}) and the spec by hand ({by_hand:?}) disagree on {self:#?}"
            ),
        }
    }

    /// The Standard Webhooks check computed in the test, without the
    /// library: the timestamp is whole seconds within five minutes of now,
    /// every `webhook-signature` entry is `v1,` and the base64 of 32 bytes,
    /// and one of them is `signature_by_hand(secret)`.
    pub fn verify_by_hand(&self, secret: &str) -> Result<(), String> {
        let timestamp = header(&self.headers, "webhook-timestamp")?;
        let seconds: i64 = timestamp
            .parse()
            .map_err(|_| format!("webhook-timestamp {timestamp:?} is not whole seconds"))?;
        let now = unix_now();
        if (now - seconds).abs() > TOLERANCE_SECS {
            return Err(format!(
                "webhook-timestamp {seconds} is more than five minutes from now ({now})"
            ));
        }
        let expected = self.signature_by_hand(secret)?;
        let signatures = header(&self.headers, "webhook-signature")?;
        for entry in signatures.split(' ') {
            let Some(("v1", signature)) = entry.split_once(',') else {
                return Err(format!("{entry:?} in {signatures:?} is not a v1 signature"));
            };
            let bytes = STANDARD
                .decode(signature)
                .map_err(|e| format!("{entry:?} is not base64: {e}"))?;
            if bytes.len() != 32 {
                return Err(format!(
                    "{entry:?} is not an HMAC-SHA256 ({} bytes)",
                    bytes.len()
                ));
            }
        }
        if signatures.split(' ').any(|entry| entry == expected) {
            Ok(())
        } else {
            Err(format!("no entry of {signatures:?} is {expected}"))
        }
    }

    /// The `v1,` entry that `secret` gives this request's id, timestamp and body.
    pub fn signature_by_hand(&self, secret: &str) -> Result<String, String> {
        sign_by_hand(
            secret,
            header(&self.headers, "webhook-id")?,
            header(&self.headers, "webhook-timestamp")?,
            &self.body,
        )
    }
}

/// A Standard Webhooks signature from the spec: `v1,` and the base64 of
/// HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the bytes whose
/// base64 follows `whsec_` in `secret`.
pub fn sign_by_hand(secret: &str, id: &str, timestamp: &str, body: &str) -> Result<String, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| format!("the secret {secret:?} does not start with whsec_"))?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|e| format!("the secret is not base64: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers
        .get(name)
        .ok_or_else(|| format!("no {name} header"))?
        .to_str()
        .map_err(|e| format!("{name} is not text: {e}"))
}

fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit in i64")
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

/// The published vector of the `standardwebhooks` crate's own `test_sign`
/// (1.0.1, src/lib.rs): the hand computation is the spec's.
#[test]
fn the_hand_computed_signature_matches_the_standard_webhooks_test_vector() {
    let signed = sign_by_hand(
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        "1649367553",
        r#"{"email":"test@example.com","username":"test_user"}"#,
    )
    .unwrap();
    assert_eq!(signed, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
}

/// A request signed by hand with `secrets` (space-separated entries).
fn signed_with(secrets: &[&str], timestamp: i64, body: &str) -> Received {
    let (id, timestamp) = ("msg_2hand", timestamp.to_string());
    let entries: Vec<String> = secrets
        .iter()
        .map(|s| sign_by_hand(s, id, &timestamp, body).unwrap())
        .collect();
    let mut headers = HeaderMap::new();
    let value = |text: &str| axum::http::HeaderValue::from_str(text).unwrap();
    headers.insert("webhook-id", value(id));
    headers.insert("webhook-timestamp", value(&timestamp));
    headers.insert("webhook-signature", value(&entries.join(" ")));
    Received {
        id: id.to_owned(),
        headers,
        body: body.to_owned(),
        json: Value::Null,
        at: Instant::now(),
        accepted: true,
    }
}

#[test]
fn the_hand_check_takes_either_rotated_secret_and_refuses_a_wrong_one_a_stale_time_or_a_changed_body()
 {
    let old = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = r#"{"type":"webhook.test"}"#;
    let now = unix_now();

    let rotated = signed_with(&[new, old], now, body);
    rotated.verify(new).expect("the new secret");
    rotated.verify(old).expect("the old secret, beside it");
    assert!(signed_with(&[new], now, body).verify(old).is_err());

    let stale = signed_with(&[new], now - TOLERANCE_SECS - 10, body);
    let refused = stale.verify(new).unwrap_err();
    assert!(refused.contains("five minutes"), "{refused}");
    let early = signed_with(&[new], now + TOLERANCE_SECS + 10, body);
    assert!(early.verify(new).is_err());

    let mut changed = signed_with(&[new], now, body);
    changed.body.push(' ');
    assert!(changed.verify(new).is_err());
}
