//! Frames a subscription sends, in either protocol, and the loops that
//! forward a subscription's responses as frames.

use async_graphql::{Response as GqlResponse, Value as GqlValue};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Next, Outgoing, Protocol};
use crate::http::fanout::{End, Shared};

pub(super) async fn send(out: &mpsc::Sender<Outgoing>, message: Value) -> Next {
    let _ = out.send(Outgoing::Text(message.to_string())).await;
    Next::Continue
}

/// Sends an operation's results; a result without data is an `error` that ends it.
pub(super) async fn forward(
    mut stream: impl futures_util::Stream<Item = GqlResponse> + Unpin,
    id: &str,
    protocol: Protocol,
    out: &mpsc::Sender<Outgoing>,
) {
    while let Some(response) = stream.next().await {
        if response.data == GqlValue::Null && !response.errors.is_empty() {
            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
            let _ = out.send(error_frame(id, protocol, &errors)).await;
            return;
        }
        let payload = serde_json::to_string(&response).unwrap_or_default();
        if out.send(next_frame(id, protocol, &payload)).await.is_err() {
            return;
        }
    }
    let _ = out.send(complete_frame(id)).await;
}

/// Sends a shared execution's newest payloads, then how it ended.
pub(super) async fn forward_shared(
    shared: &Shared,
    id: &str,
    protocol: Protocol,
    out: &mpsc::Sender<Outgoing>,
) {
    let mut state = shared.watch();
    let mut sent = 0;
    loop {
        let (newest, end) = {
            let now = state.borrow_and_update();
            let newest = (now.seq > sent).then(|| now.last.clone()).flatten();
            (newest.map(|p| (now.seq, p)), now.end.clone())
        };
        if let Some((seq, payload)) = newest {
            sent = seq;
            if out.send(next_frame(id, protocol, &payload)).await.is_err() {
                return;
            }
        }
        let last = match end {
            Some(End::Errors(errors)) => error_frame(id, protocol, &errors),
            Some(End::Complete) => complete_frame(id),
            None if state.changed().await.is_ok() => continue,
            None => complete_frame(id),
        };
        let _ = out.send(last).await;
        return;
    }
}

fn next_frame(id: &str, protocol: Protocol, payload: &str) -> Outgoing {
    let kind = if protocol == Protocol::Legacy {
        "data"
    } else {
        "next"
    };
    let id = Value::from(id);
    Outgoing::Text(format!(
        r#"{{"type":"{kind}","id":{id},"payload":{payload}}}"#
    ))
}

pub(super) fn error_frame(id: &str, protocol: Protocol, errors: &Value) -> Outgoing {
    let payload = if protocol == Protocol::Legacy {
        &errors[0]
    } else {
        errors
    };
    Outgoing::Text(json!({ "type": "error", "id": id, "payload": payload }).to_string())
}

fn complete_frame(id: &str) -> Outgoing {
    Outgoing::Text(json!({ "type": "complete", "id": id }).to_string())
}
