//! One attempt of one delivery: sign, POST, read a bounded answer.

use std::sync::Arc;
use std::time::Duration;

use entity::{webhook_delivery, webhook_endpoint};
use reqwest::Url;
use standardwebhooks::Webhook;

use super::guard::{GuardedResolver, refused_literal};
use crate::config::Config;
use crate::domain::now_ms;

/// Most of a response body read; the rest is not waited for.
const READ_LIMIT: usize = 64 * 1024;
/// Most of a response body stored.
const STORE_LIMIT: usize = 1024;
/// Longest a connection may take, within the request's total time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client every attempt uses: no redirects (a 3xx is a failed
/// attempt), no proxies from the environment, bounded times, and the
/// address guard unless private addresses are allowed.
pub fn client(config: &Config) -> reqwest::Result<reqwest::Client> {
    let total = Duration::from_millis(config.webhook_timeout_ms);
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT.min(total))
        .timeout(total)
        .user_agent(concat!("bulkwatch-webhooks/", env!("CARGO_PKG_VERSION")));
    if !config.webhook_allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build()
}

/// What the receiver answered, or why there is no answer.
pub struct Answer {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<String>,
}

impl Answer {
    fn failed(error: impl Into<String>) -> Answer {
        Answer {
            status: None,
            body: None,
            error: Some(error.into()),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// `webhook-signature`: a `v1,` signature with the current secret and,
/// during a rotation's grace period, one with the previous secret too.
fn signature(
    endpoint: &webhook_endpoint::Model,
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, String> {
    let now = now_ms();
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        secrets.push(previous);
    }
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let signer = Webhook::new(secret).map_err(|_| "the endpoint's secret is malformed")?;
        let signed = signer
            .sign(message_id, timestamp, body.as_bytes())
            .map_err(|_| "the message cannot be signed")?;
        signatures.push(signed);
    }
    Ok(signatures.join(" "))
}

/// The error and its causes in one line, without the URL (which may
/// carry a receiver's token).
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sends one attempt.
pub async fn attempt(
    client: &reqwest::Client,
    endpoint: &webhook_endpoint::Model,
    delivery: &webhook_delivery::Model,
    allow_private: bool,
) -> Answer {
    let Ok(url) = Url::parse(&endpoint.url) else {
        return Answer::failed("the endpoint's URL is not valid");
    };
    if !allow_private && let Some(refused) = refused_literal(&url) {
        return Answer::failed(refused.to_string());
    }
    let timestamp = now_ms() / 1000;
    let signature = match signature(endpoint, &delivery.message_id, timestamp, &delivery.body) {
        Ok(s) => s,
        Err(e) => return Answer::failed(e),
    };
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return Answer::failed(describe(e)),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let mut error = None;
    while body.len() < READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                error = Some(describe(e));
                break;
            }
        }
    }
    body.truncate(STORE_LIMIT);
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if text.len() > STORE_LIMIT {
        let mut end = STORE_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Answer {
        status: Some(status),
        body: Some(text),
        error: error.or_else(|| {
            (!(200..300).contains(&status)).then(|| format!("the receiver answered {status}"))
        }),
    }
}
