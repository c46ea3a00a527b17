//! `mixed-flood`: does one organisation flooding the server raise another's
//! latency? The `mixed` load runs twice on one server with the rate limits
//! on: calm, then while a second organisation polls as fast as 32
//! connections allow. The figure that answers is the first organisation's
//! poll p99, flooded over calm (the aim: at most 2).
//!
//! The limits: 1,000 requests a second per organisation and per key. The
//! calm organisation needs more than 400 at the start (its 1,000 subscribers
//! subscribe at once); the flooder is let through at 1,000 a second, a good
//! part of what this machine serves, and every request over that is
//! refused, which costs the server too.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{self, Gql};
use crate::scenarios::Rig;
use crate::{Env, Figures, Res};

pub const LIMITS: &[(&str, &str)] = &[
    ("BULKWATCH_RATE_LIMIT_ORG_RPS", "1000"),
    ("BULKWATCH_RATE_LIMIT_KEY_RPS", "1000"),
    ("BULKWATCH_RATE_LIMIT_ORG_COMPLEXITY", "2000000"),
];
const FLOODERS: usize = 32;
const POLL: &str = "query($id: ID!) { bulkTask(id: $id) { id status counters { total } } }";

pub async fn run(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let calm = crate::mixed::phase(env, rig, out, "mixed_flood", "calm.").await?;

    let key = second_organisation_key(env, &rig.db_url)?;
    let flooder = Gql::new(rig.gql.base(), Some(&key));
    let (task, _) = client::create_task(&flooder, "bench.flood", 10).await?;
    let body = Gql::body(POLL, json!({ "id": task }));
    let (served, refused, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for _ in 0..FLOODERS {
        let (flooder, body) = (flooder.clone(), body.clone());
        let (served, refused, failed, stop) = (
            served.clone(),
            refused.clone(),
            failed.clone(),
            stop.clone(),
        );
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match flooder.post_raw(body.clone()).await {
                    Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                    Err(e) if e.to_string().contains("429") => {
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let started = Instant::now();
    let flooded = crate::mixed::phase(env, rig, out, "mixed_flood", "flooded.").await;
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = tokio::time::timeout(Duration::from_secs(5), f).await;
    }
    let flooded = flooded?;
    let secs = started.elapsed().as_secs_f64();
    let rate = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64 / secs;
    out.add("mixed_flood", "flood.served", rate(&served), "req/s");
    out.add("mixed_flood", "flood.refused_429", rate(&refused), "req/s");
    out.add(
        "mixed_flood",
        "flood.failed_otherwise",
        failed.load(Ordering::Relaxed) as f64,
        "requests",
    );
    out.add(
        "mixed_flood",
        "poll_p99_flooded_over_calm",
        flooded / calm,
        "x",
    );
    Ok(())
}

/// A key of a second organisation, made with the CLI as an operator would.
fn second_organisation_key(env: &Env, database_url: &str) -> Res<String> {
    let cli = |args: &[&str]| -> Res<String> {
        let output = Command::new(&env.binary)
            .args(args)
            .env("DATABASE_URL", database_url)
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "bulkwatch {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(String::from_utf8(output.stdout)?)
    };
    cli(&["orgs", "create", "flood"])?;
    let printed = cli(&["keys", "create", "--org", "flood"])?;
    printed
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("bw_"))
        .map(str::to_owned)
        .ok_or_else(|| format!("no key in: {printed}").into())
}
