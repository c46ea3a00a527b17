//! `fanout`: N WebSocket subscribers (`graphql-transport-ws`) on one task,
//! one change a second. Commit-to-client latency (the event's `updatedAt`
//! against the moment this process reads the frame, both on this machine's
//! clock), delivery of the final state to every subscriber, and the server's
//! resident memory per idle subscriber.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::client;
use crate::procfs::status_kib;
use crate::scenarios::{REPORT, Rig, cpu};
use crate::stats::Samples;
use crate::{Env, Figures, Res};

const SUBSCRIBE: &str = "subscription($id: ID!) { bulkTaskUpdated(id: $id) { version updatedAt counters { finished } } }";

/// Handshakes in flight at once while subscribers connect.
const CONNECTING: usize = 200;

pub async fn run(env: &Env, out: &mut Figures) -> Res<()> {
    let sizes: &[usize] = if env.full() {
        &[1_000, 10_000]
    } else {
        &[1_000]
    };
    out.add(
        "fanout",
        "open_files_limit",
        crate::open_files_limit() as f64,
        "files",
    );
    let mut failed = Vec::new();
    for &n in sizes {
        let rig = Rig::start(env, 1, &[]).await?;
        let result = one(env, &rig, n, out).await;
        out.add(
            "fanout",
            format!("n{n}.server_peak_rss"),
            rig.sampler.hwm_kib() as f64 / 1024.0,
            "MiB",
        );
        rig.pool.close().await;
        if let Err(e) = result {
            eprintln!("bench: fanout with {n} subscribers failed: {e}");
            eprintln!("bench: server log tail:\n{}", rig.server.log_tail());
            failed.push(format!("{n} subscribers: {e}"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; ").into())
    }
}

/// What every subscriber shares with the harness.
#[derive(Default)]
struct Shared {
    subscribed: AtomicUsize,
    failed: AtomicUsize,
    final_seen: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

/// What one subscriber saw after its first event.
#[derive(Default)]
struct Seen {
    latency: Samples,
    /// The same, per change (by `counters.finished`).
    by_change: Vec<Samples>,
    events: usize,
    got_final: bool,
    completed: bool,
    version_went_back: bool,
}

async fn one(env: &Env, rig: &Rig, n: usize, out: &mut Figures) -> Res<()> {
    let changes = if env.full() { 20 } else { 5 };
    let p = format!("n{n}");
    // One item per change: the last change makes the task terminal, and
    // every stream must deliver that state and then complete.
    let (task_id, _) = client::create_task(&rig.gql, "bench.fanout", changes).await?;
    let addr = rig
        .server
        .base
        .strip_prefix("http://")
        .ok_or("the server base is not http://")?
        .to_owned();
    let authorization = format!("Bearer {}", rig.server.api_key.clone().unwrap_or_default());
    let pid = rig.server.pid();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = status_kib(pid, "VmRSS").unwrap_or(0);

    // Connect and subscribe, CONNECTING at a time.
    eprintln!("bench: connecting {n} subscribers");
    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let t = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await?;
        let (addr, authorization, task_id) = (addr.clone(), authorization.clone(), task_id.clone());
        let (sh, stop) = (shared.clone(), stop_rx.clone());
        set.spawn(async move {
            let result = subscriber(
                &addr,
                &authorization,
                &task_id,
                changes as u64,
                permit,
                &sh,
                stop,
            )
            .await;
            if let Err(e) = &result {
                sh.failed.fetch_add(1, Ordering::Relaxed);
                sh.first_error
                    .lock()
                    .expect("lock")
                    .get_or_insert_with(|| e.to_string());
            }
            result
        });
        // Give up early when the server refuses connections wholesale.
        if shared.failed.load(Ordering::Relaxed) > n / 10 {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while shared.subscribed.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed)
        < set.len()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = t.elapsed().as_secs_f64();
    let subscribed = shared.subscribed.load(Ordering::Relaxed);
    out.add(
        "fanout",
        format!("{p}.subscribers"),
        subscribed as f64,
        "subscribers",
    );
    out.add(
        "fanout",
        format!("{p}.connect_and_subscribe"),
        connect_secs,
        "s",
    );
    if subscribed < n {
        let why = shared
            .first_error
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or_else(|| "timed out".into());
        eprintln!(
            "bench: only {subscribed} of {n} subscribers got their first event; first error: {why}"
        );
        out.add(
            "fanout",
            format!("{p}.failed_subscribers"),
            (n - subscribed) as f64,
            "subscribers",
        );
    }
    if subscribed == 0 {
        let _ = stop_tx.send(true);
        return Err("no subscriber could subscribe".into());
    }

    // Idle: everyone subscribed, nothing changes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = status_kib(pid, "VmRSS").unwrap_or(0);
    let per = rss_idle.saturating_sub(rss_before) as f64 / subscribed as f64;
    out.add(
        "fanout",
        format!("{p}.rss_before"),
        rss_before as f64 / 1024.0,
        "MiB",
    );
    out.add(
        "fanout",
        format!("{p}.rss_idle"),
        rss_idle as f64 / 1024.0,
        "MiB",
    );
    out.add("fanout", format!("{p}.rss_per_idle_subscriber"), per, "KiB");

    // One change a second: one item reported.
    eprintln!("bench: {changes} changes, one a second");
    let mark = rig.sampler.mark();
    let mut report_lat = Samples::default();
    let start = tokio::time::Instant::now();
    for k in 0..changes {
        tokio::time::sleep_until(start + Duration::from_secs(k as u64)).await;
        let t = Instant::now();
        let data = rig
            .gql
            .query(
                REPORT,
                json!({ "input": { "taskId": task_id, "results": [{ "index": k, "outcome": "SUCCEEDED" }] } }),
            )
            .await?;
        report_lat.push(t.elapsed());
        if data["reportItemResults"]["applied"].as_u64() != Some(1) {
            return Err(format!("a change was not applied: {data}").into());
        }
    }
    // Until every subscriber has the final state, or 15 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    while shared.final_seen.load(Ordering::Relaxed) < subscribed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered_in = start.elapsed().as_secs_f64() - (changes - 1) as f64;
    let usage = rig.sampler.since(mark);
    // A moment for the `complete` messages that follow the terminal event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);

    let (mut latency, mut events, mut finals, mut completed, mut went_back) =
        (Samples::default(), 0, 0, 0, 0);
    let mut by_change: Vec<Samples> = vec![Samples::default(); changes + 1];
    while let Some(r) = set.join_next().await {
        let Ok(Ok(seen)) = r else { continue };
        latency.extend(seen.latency);
        for (k, l) in seen.by_change.into_iter().enumerate() {
            if let Some(slot) = by_change.get_mut(k) {
                slot.extend(l);
            }
        }
        events += seen.events;
        finals += usize::from(seen.got_final);
        completed += usize::from(seen.completed);
        went_back += usize::from(seen.version_went_back);
    }
    for (k, l) in by_change.iter_mut().enumerate().skip(1) {
        eprintln!(
            "bench: change {k}: {} events, commit to client p50 {:.1} ms, max {:.1} ms",
            l.len(),
            l.p50(),
            l.quantile(1.0)
        );
    }
    out.add("fanout", format!("{p}.changes"), changes as f64, "changes");
    out.add(
        "fanout",
        format!("{p}.commit_to_client_p50"),
        latency.p50(),
        "ms",
    );
    out.add(
        "fanout",
        format!("{p}.commit_to_client_p99"),
        latency.p99(),
        "ms",
    );
    out.add(
        "fanout",
        format!("{p}.commit_to_client_max"),
        latency.quantile(1.0),
        "ms",
    );
    out.add(
        "fanout",
        format!("{p}.events_per_subscriber"),
        events as f64 / subscribed as f64,
        "events",
    );
    out.add(
        "fanout",
        format!("{p}.delivery_final_state"),
        finals as f64 / n as f64,
        "ratio",
    );
    out.add(
        "fanout",
        format!("{p}.streams_completed"),
        completed as f64 / n as f64,
        "ratio",
    );
    out.add(
        "fanout",
        format!("{p}.last_change_to_all_delivered"),
        delivered_in * 1000.0,
        "ms",
    );
    out.add("fanout", format!("{p}.report_p50"), report_lat.p50(), "ms");
    cpu(out, "fanout", &format!("{p}.changes"), &usage);
    if went_back > 0 {
        return Err(format!("{went_back} subscribers saw a version go back").into());
    }
    if finals < n {
        return Err(format!(
            "{} of {n} subscribers did not receive the final state",
            n - finals
        )
        .into());
    }
    Ok(())
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// One subscriber: connect, init, subscribe, then record every event until told to stop.
async fn subscriber(
    addr: &str,
    authorization: &str,
    task_id: &str,
    target_finished: u64,
    permit: OwnedSemaphorePermit,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) -> Res<Seen> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // Small buffers: 10,000 of these live in this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(
        json!({ "type": "connection_init", "payload": { "Authorization": authorization } }),
    ))
    .await?;
    let mut permit = Some(permit);
    let mut seen = Seen::default();
    let mut initial = true;
    let mut version = -1;
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                if initial {
                    return Err(format!("closed before the first event: {frame:?}").into());
                }
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => break,
        };
        let at = micros_now();
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
                    return Err(format!("an event without data: {text}").into());
                }
                let v_now = task["version"].as_i64().unwrap_or(-1);
                seen.version_went_back |= v_now < version;
                version = v_now;
                if task["counters"]["finished"].as_u64() == Some(target_finished) {
                    seen.got_final = true;
                    shared.final_seen.fetch_add(1, Ordering::Relaxed);
                }
                if initial {
                    initial = false;
                    shared.subscribed.fetch_add(1, Ordering::Relaxed);
                    // Free the handshake slot for the next subscriber.
                    permit.take();
                    continue;
                }
                let committed = task["updatedAt"]
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .ok_or_else(|| format!("no updatedAt in {text}"))?
                    .timestamp_micros();
                let lat = Duration::from_micros((at - committed).max(0) as u64);
                seen.latency.push(lat);
                let k = task["counters"]["finished"].as_u64().unwrap_or(0) as usize;
                if seen.by_change.len() <= k {
                    seen.by_change.resize(k + 1, Samples::default());
                }
                seen.by_change[k].push(lat);
                seen.events += 1;
            }
            Some("complete") => {
                seen.completed = true;
            }
            Some("error") => return Err(format!("subscription error: {text}").into()),
            _ => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
    Ok(seen)
}
