//! The worker's GraphQL client and the operations it sends.

use std::time::Duration;

use serde_json::{Value, json};

pub(super) const CLAIM: &str = "mutation($input: ClaimTaskItemsInput!) { claimTaskItems(input: $input) { \
    items { leaseToken item { id index clientItemId payload attempts task { id } } } } }";
pub(super) const RENEW: &str =
    "mutation($input: RenewLeasesInput!) { renewLeases(input: $input) { renewed expired } }";
pub(super) const REPORT_FIELDS: &str = "applied duplicates problems { position code message } \
    task { id status progress counters { total pending running succeeded failed cancelled finished } }";

/// A GraphQL client for one endpoint.
#[derive(Clone)]
pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    pub(super) api_key: Option<String>,
}

impl Client {
    /// Sends one operation; retries transport failures and 5xx (the server may be restarting).
    pub(super) async fn request(&self, query: &str, variables: Value) -> Result<Value, String> {
        let body = json!({ "query": query, "variables": variables });
        let mut delay = Duration::from_millis(250);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut request = self.http.post(&self.url).json(&body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let why = match request.send().await {
                Ok(response) if response.status().is_server_error() => {
                    format!("HTTP {}", response.status())
                }
                Ok(response) => {
                    let status = response.status();
                    let value: Value = response
                        .json()
                        .await
                        .map_err(|e| format!("HTTP {status}: {e}"))?;
                    return match value.get("errors") {
                        Some(errors) => Err(describe_errors(errors)),
                        None => Ok(value["data"].clone()),
                    };
                }
                Err(e) => e.to_string(),
            };
            if tries >= 20 {
                return Err(format!("giving up after {tries} tries: {why}"));
            }
            eprintln!("request failed ({why}); retrying in {delay:?}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(3));
        }
    }
}

fn describe_errors(errors: &Value) -> String {
    let list = errors.as_array().cloned().unwrap_or_default();
    let parts: Vec<String> = list
        .iter()
        .map(|e| {
            let code = e["extensions"]["code"].as_str().unwrap_or("?");
            let message = e["message"].as_str().unwrap_or("");
            format!("{code}: {message}")
        })
        .collect();
    parts.join("; ")
}
