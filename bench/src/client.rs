//! A small GraphQL-over-HTTP client, like a real one: JSON bodies, variables.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Res;

/// A graphql-transport-ws connection to the server at `addr`, with
/// `connection_init` (carrying the key) sent; the server's
/// `connection_ack` is the first message to read.
pub async fn ws_connect(
    addr: &str,
    authorization: &str,
) -> Res<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": authorization } });
    ws.send(Message::text(init.to_string())).await?;
    Ok(ws)
}

#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    base: String,
    url: String,
    authorization: Option<String>,
}

impl Gql {
    pub fn new(base: &str, api_key: Option<&str>) -> Gql {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("a client");
        let authorization = api_key.map(|k| format!("Bearer {k}"));
        Gql {
            http,
            base: base.to_owned(),
            url: format!("{base}/graphql"),
            authorization,
        }
    }

    /// The server's base URL, `http://host:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request body, serialised ahead of the measurement.
    pub fn body(query: &str, variables: Value) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&json!({ "query": query, "variables": variables })).expect("json"),
        )
    }

    /// Posts a prepared body; the raw response body.
    pub async fn post_raw(&self, body: Bytes) -> Res<Bytes> {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = &self.authorization {
            request = request.header("authorization", a);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
            )
            .into());
        }
        Ok(bytes)
    }

    /// Posts a prepared body; `data`, or an error when the response has errors.
    pub async fn post(&self, body: Bytes) -> Res<Value> {
        let bytes = self.post_raw(body).await?;
        let mut value: Value = serde_json::from_slice(&bytes)?;
        if let Some(errors) = value.get("errors") {
            return Err(format!("GraphQL errors: {errors}").into());
        }
        Ok(value["data"].take())
    }

    pub async fn query(&self, query: &str, variables: Value) -> Res<Value> {
        self.post(Self::body(query, variables)).await
    }

    /// `bulkwatch_sql_statements_total` from /metrics.
    pub async fn sql_statements(&self) -> Res<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        text.lines()
            .find_map(|l| l.strip_prefix("bulkwatch_sql_statements_total "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| "no bulkwatch_sql_statements_total in /metrics".into())
    }
}

/// The id of the bulk task a global id names.
pub fn task_uuid(id: &str) -> Res<Uuid> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(id)?)?;
    let uuid = text.strip_prefix("BulkTask:").ok_or("not a BulkTask id")?;
    Ok(Uuid::try_parse(uuid)?)
}

/// A global id as the server mints it (`Type:uuid`, base64url).
pub fn global_id(kind: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{}", id.simple()))
}

pub const CREATE: &str = "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { created task { id counters { total pending } } rejected { index } } }";

/// Items as a producer sends them, and the payload text the server stores for each.
pub fn new_items(from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| json!({ "clientItemId": format!("c-{i}"), "payload": { "sku": format!("SKU-{i:08}"), "qty": i % 7 + 1 } }))
        .collect()
}

/// The payload text of `new_items`' item `i`, as the server stores it.
pub fn payload_text(i: usize) -> String {
    serde_json::to_string(&json!({ "sku": format!("SKU-{i:08}"), "qty": i % 7 + 1 })).expect("json")
}

/// A task's status and counters, as a check at the end of a scenario reads them.
pub async fn task_counters(gql: &Gql, task_id: &str) -> Res<Value> {
    let data = gql
        .query(
            "query($id: ID!) { bulkTask(id: $id) { status counters { total pending running \
             succeeded failed skipped rejected cancelled finished } } }",
            json!({ "id": task_id }),
        )
        .await?;
    Ok(data["bulkTask"].clone())
}

/// Creates a sealed task with `n` items; its id and uuid.
pub async fn create_task(gql: &Gql, task_type: &str, n: usize) -> Res<(String, Uuid)> {
    create_task_with(gql, task_type, n, json!({})).await
}

/// Like `create_task`, with the other `CreateBulkTaskInput` fields in `extra`.
pub async fn create_task_with(
    gql: &Gql,
    task_type: &str,
    n: usize,
    extra: Value,
) -> Res<(String, Uuid)> {
    let mut input = json!({ "type": task_type, "items": new_items(0, n) });
    for (k, v) in extra.as_object().into_iter().flatten() {
        input[k] = v.clone();
    }
    let data = gql.query(CREATE, json!({ "input": input })).await?;
    let task = &data["createBulkTask"]["task"];
    if task["counters"]["total"].as_u64() != Some(n as u64) {
        return Err(format!("seeding: unexpected task {task}").into());
    }
    let id = task["id"].as_str().ok_or("no task id")?.to_owned();
    let uuid = task_uuid(&id)?;
    Ok((id, uuid))
}
