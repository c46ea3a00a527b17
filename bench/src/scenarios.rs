//! The scenarios. Each runs on its own server process and fresh database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::client::{self, Gql};
use crate::procfs::{Sampler, Usage};
use crate::raw::{self, Outcome, Pool};
use crate::server::{FreshDb, Server};
use crate::stats::{self, Samples};
use crate::{Env, Figures, Res, Scenario};

/// A started server on a fresh database, with its sampler, a client and a
/// raw pool on the same database.
pub(crate) struct Rig {
    pub(crate) gql: Gql,
    pub(crate) pool: Pool,
    pub(crate) sampler: Sampler,
    pub(crate) server: Server,
    /// The database's URL, for baselines that open their own connections.
    pub(crate) db_url: String,
    _db: FreshDb,
}

impl Rig {
    pub(crate) async fn start(
        env: &Env,
        raw_connections: u32,
        settings: &[(&str, &str)],
    ) -> Res<Rig> {
        let db = FreshDb::new(env.backend).await?;
        let server = Server::start(&env.binary, &db, settings).await?;
        let sampler = Sampler::start(server.pid());
        let gql = Gql::new(&server.base, server.api_key.as_deref());
        // The server has migrated the database by the time it is ready.
        let pool = Pool::baseline(env.backend, &db.url, raw_connections).await?;
        Ok(Rig {
            gql,
            pool,
            sampler,
            server,
            db_url: db.url.clone(),
            _db: db,
        })
    }
}

pub async fn run(env: &Env, scenario: Scenario, out: &mut Figures) -> Res<()> {
    let name = match scenario {
        Scenario::Report => "report",
        Scenario::Create => "create",
        Scenario::Read => "read",
        Scenario::Deep => "deep",
        Scenario::Claim => "claim",
        Scenario::Export => "export",
        Scenario::Filter => "filter",
        Scenario::Prune => "prune",
        Scenario::Poll => "poll",
        Scenario::Mixed => "mixed",
        Scenario::MixedFlood => "mixed_flood",
        // One server per subscriber count: it starts its own.
        Scenario::Fanout => return crate::fanout::run(env, out).await,
        // It starts its own server, allowed to send to the local receiver.
        Scenario::Webhooks => return crate::webhooks::run(env, out).await,
        // Listeners and writers of its own, no server.
        Scenario::Notify => return crate::notify::run(env, out).await,
        // They run several servers, a balancer and faults of their own.
        Scenario::Deploy => return crate::deploy::run(env, out).await,
        Scenario::Faults => return crate::faults::run(env, out).await,
        Scenario::All => unreachable!("expanded by the caller"),
    };
    let connections = if env.backend == crate::Backend::Sqlite
        && !matches!(
            scenario,
            Scenario::Read | Scenario::Poll | Scenario::Mixed | Scenario::MixedFlood
        ) {
        1
    } else {
        8
    };
    // The pruner sweeps often, so that the measurement starts soon after the task expires.
    let settings: &[(&str, &str)] = match scenario {
        Scenario::Prune => &[("BULKWATCH_PRUNE_INTERVAL_MS", "200")],
        Scenario::MixedFlood => crate::flood::LIMITS,
        _ => &[],
    };
    let mut rig = Rig::start(env, connections, settings).await?;
    let result = match scenario {
        Scenario::Report => report(env, &rig, out).await,
        Scenario::Create => create(env, &rig, out).await,
        Scenario::Read => read(env, &rig, out).await,
        Scenario::Deep => deep(env, &rig, out).await,
        Scenario::Claim => crate::claim::run(env, &rig, out).await,
        Scenario::Export => crate::results::export(env, &rig, out).await,
        Scenario::Filter => crate::results::filter(env, &rig, out).await,
        Scenario::Prune => crate::results::prune(env, &rig, out).await,
        Scenario::Poll => crate::poll::run(env, &rig, out).await,
        Scenario::Mixed => crate::mixed::run(env, &rig, out).await,
        Scenario::MixedFlood => crate::flood::run(env, &rig, out).await,
        Scenario::Fanout
        | Scenario::Webhooks
        | Scenario::Notify
        | Scenario::Deploy
        | Scenario::Faults
        | Scenario::All => unreachable!(),
    };
    out.add(
        name,
        "server_peak_rss",
        rig.sampler.hwm_kib() as f64 / 1024.0,
        "MiB",
    );
    rig.pool.close().await;
    if result.is_err() {
        eprintln!("bench: server log tail:\n{}", rig.server.log_tail());
        eprintln!("bench: server process: {}", rig.server.exit_status());
    }
    result
}

/// Where the CPU went in a phase, in cores (CPU seconds per wall second).
pub(crate) fn cpu(out: &mut Figures, scenario: &'static str, prefix: &str, u: &Usage) {
    out.add(
        scenario,
        format!("{prefix}.cpu_server"),
        u.server_cpu / u.wall,
        "cores",
    );
    out.add(
        scenario,
        format!("{prefix}.cpu_harness"),
        u.harness_cpu / u.wall,
        "cores",
    );
    out.add(
        scenario,
        format!("{prefix}.cpu_other"),
        u.other_cpu / u.wall,
        "cores",
    );
}

pub(crate) const REPORT: &str = "mutation($input: ReportItemResultsInput!) { reportItemResults(input: $input) { applied duplicates problems { position code } } }";

/// `report`: W workers apply outcomes in batches of B, 10 % FAILED.
async fn report(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let n = if env.full() { 100_000 } else { 10_000 };
    // Workers stop taking batches after this long, so a slow server cannot stall the run.
    let budget = Duration::from_secs(if env.full() { 60 } else { 8 });
    for (workers, batch) in [(1usize, 100usize), (1, 1000), (4, 100), (4, 1000)] {
        let prefix = format!("w{workers}_b{batch}");
        let batches: Vec<Vec<usize>> = (0..n)
            .collect::<Vec<_>>()
            .chunks(batch)
            .map(<[usize]>::to_vec)
            .collect();

        // Every task seeded up front, with fresh planner statistics, so no side is favoured.
        let (task_id, task_uuid) = client::create_task(&rig.gql, "bench.report", n).await?;
        let (policy_id, policy_uuid) =
            client::create_task_with(&rig.gql, "bench.report", n, POLICY.clone()).await?;
        let (_, raw_task) = client::create_task(&rig.gql, "bench.report", n).await?;
        rig.pool.analyze().await?;
        let (mut lat, applied, wall, usage) =
            send_reports(rig, &task_id, &batches, workers, budget).await?;
        let rate = applied as f64 / wall;
        if applied < n as u64 {
            eprintln!("bench: the server applied {applied} of {n} outcomes within the time budget");
        }
        // The same reports into a task with a failure policy (that never fires
        // at 10 % failures): what judging it in every report transaction costs.
        let (mut policy_lat, policy_applied, policy_wall, _) =
            send_reports(rig, &policy_id, &batches, workers, budget).await?;
        let policy_rate = policy_applied as f64 / policy_wall;
        out.add(
            "report",
            format!("{prefix}.policy_items_per_s"),
            policy_rate,
            "items/s",
        );
        out.add(
            "report",
            format!("{prefix}.policy_batch_p50"),
            policy_lat.p50(),
            "ms",
        );
        out.add(
            "report",
            format!("{prefix}.policy_batch_p99"),
            policy_lat.p99(),
            "ms",
        );
        out.add(
            "report",
            format!("{prefix}.policy_ratio_to_plain"),
            policy_rate / rate,
            "x",
        );
        check_counters(
            rig,
            &policy_id,
            policy_uuid,
            n,
            policy_applied,
            &prefix,
            "policy_counters_ok",
            out,
        )
        .await?;

        // Raw baseline on the task seeded the same way.
        let outcomes: Arc<Vec<Vec<Outcome>>> = Arc::new(
            batches
                .iter()
                .map(|b| {
                    b.iter()
                        .map(|&i| Outcome {
                            idx: i as i32,
                            failed: i % 10 == 0,
                        })
                        .collect()
                })
                .collect(),
        );
        let raw_mark = rig.sampler.mark();
        let t = Instant::now();
        let mut set = JoinSet::new();
        for w in 0..workers {
            let (pool, outcomes) = (rig.pool.clone(), outcomes.clone());
            if env.backend == crate::Backend::Sqlite {
                // SQLite's own limit: a prepared loop on a blocking thread.
                let path = crate::raw_sqlite::path_of(&rig.db_url);
                set.spawn(async move {
                    tokio::task::spawn_blocking(move || {
                        let mut conn = crate::raw_sqlite::connect(&path)?;
                        let mut lat = Samples::default();
                        for b in outcomes.iter().skip(w).step_by(workers) {
                            let t = Instant::now();
                            let changed = crate::raw_sqlite::report_batch(&mut conn, raw_task, b)?;
                            lat.push(t.elapsed());
                            if changed != b.len() as u64 {
                                return Err(format!(
                                    "raw report changed {changed} of {} rows",
                                    b.len()
                                )
                                .into());
                            }
                        }
                        Res::Ok(lat)
                    })
                    .await?
                });
                continue;
            }
            set.spawn(async move {
                let mut lat = Samples::default();
                for b in outcomes.iter().skip(w).step_by(workers) {
                    let t = Instant::now();
                    let changed = raw::report_batch(&pool, raw_task, b).await?;
                    lat.push(t.elapsed());
                    if changed != b.len() as u64 {
                        return Err(
                            format!("raw report changed {changed} of {} rows", b.len()).into()
                        );
                    }
                }
                Res::Ok(lat)
            });
        }
        let mut raw_lat = Samples::default();
        while let Some(r) = set.join_next().await {
            raw_lat.extend(r??);
        }
        let raw_wall = t.elapsed().as_secs_f64();
        let raw_usage = rig.sampler.since(raw_mark);
        let raw_rate = n as f64 / raw_wall;

        out.add(
            "report",
            format!("{prefix}.items_applied"),
            applied as f64,
            "items",
        );
        out.add("report", format!("{prefix}.items_per_s"), rate, "items/s");
        out.add(
            "report",
            format!("{prefix}.raw_items_per_s"),
            raw_rate,
            "items/s",
        );
        out.add(
            "report",
            format!("{prefix}.ratio_to_raw"),
            rate / raw_rate,
            "x",
        );
        out.add("report", format!("{prefix}.batch_p50"), lat.p50(), "ms");
        out.add("report", format!("{prefix}.batch_p99"), lat.p99(), "ms");
        out.add(
            "report",
            format!("{prefix}.raw_batch_p50"),
            raw_lat.p50(),
            "ms",
        );
        out.add(
            "report",
            format!("{prefix}.raw_batch_p99"),
            raw_lat.p99(),
            "ms",
        );
        cpu(out, "report", &prefix, &usage);
        cpu(out, "report", &format!("{prefix}.raw"), &raw_usage);

        check_counters(
            rig,
            &task_id,
            task_uuid,
            n,
            applied,
            &prefix,
            "counters_ok",
            out,
        )
        .await?;
    }
    Ok(())
}

/// The failure policy of the `report` scenario's policy variant: a ratio
/// judged on every report, never crossed by the scenario's 10 % failures.
static POLICY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    json!({ "failurePolicy": {
        "maxFailureRatio": 0.5, "minFinished": 20, "nonRetryableCodes": ["NEVER_SENT"]
    } })
});

/// W workers send the report bodies of `batches` for `task_id`, each its
/// share back to back, until done or `budget` runs out: latencies, outcomes
/// applied, wall time and CPU.
async fn send_reports(
    rig: &Rig,
    task_id: &str,
    batches: &[Vec<usize>],
    workers: usize,
    budget: Duration,
) -> Res<(Samples, u64, f64, Usage)> {
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        batches
            .iter()
            .map(|b| {
                let results: Vec<Value> = b
                    .iter()
                    .map(|&i| {
                        if i % 10 == 0 {
                            json!({ "index": i, "outcome": "FAILED", "error": { "code": raw::ERROR_CODE, "message": raw::ERROR_MESSAGE } })
                        } else {
                            json!({ "index": i, "outcome": "SUCCEEDED", "result": { "ok": true } })
                        }
                    })
                    .collect();
                Gql::body(REPORT, json!({ "input": { "taskId": task_id, "results": results } }))
            })
            .collect(),
    );
    let mark = rig.sampler.mark();
    let t = Instant::now();
    let deadline = t + budget;
    let mut set = JoinSet::new();
    for w in 0..workers {
        let (gql, bodies) = (rig.gql.clone(), bodies.clone());
        set.spawn(async move {
            let (mut lat, mut applied) = (Samples::default(), 0u64);
            for body in bodies.iter().skip(w).step_by(workers) {
                if Instant::now() > deadline {
                    break;
                }
                let t = Instant::now();
                let data = gql.post(body.clone()).await?;
                lat.push(t.elapsed());
                let r = &data["reportItemResults"];
                if r["problems"].as_array().is_some_and(|p| !p.is_empty()) {
                    return Err(format!("report problems: {}", r["problems"]).into());
                }
                applied += r["applied"].as_u64().unwrap_or(0);
            }
            Res::Ok((lat, applied))
        });
    }
    let (mut lat, mut applied) = (Samples::default(), 0);
    while let Some(r) = set.join_next().await {
        let (l, a) = r??;
        lat.extend(l);
        applied += a;
    }
    let wall = t.elapsed().as_secs_f64();
    Ok((lat, applied, wall, rig.sampler.since(mark)))
}

/// Counters: the invariant, equal to the reports, and equal to the rows.
#[allow(clippy::too_many_arguments)]
async fn check_counters(
    rig: &Rig,
    task_id: &str,
    task_uuid: uuid::Uuid,
    n: usize,
    applied: u64,
    prefix: &str,
    figure: &str,
    out: &mut Figures,
) -> Res<()> {
    let task = client::task_counters(&rig.gql, task_id).await?;
    let c = &task["counters"];
    let get = |k: &str| c[k].as_i64().unwrap_or(-1);
    let mut ok = get("total") == get("pending") + get("running") + get("finished")
        && get("finished") == applied as i64
        && get("succeeded") + get("failed") == applied as i64
        && get("total") == n as i64;
    let rows = rig.pool.item_counts(task_uuid).await?;
    for (status, count) in &rows {
        ok &= get(&status.to_lowercase()) == *count;
    }
    if !ok {
        eprintln!("bench: counter check FAILED: counters {c}, applied {applied}, rows {rows:?}");
    }
    out.add(
        "report",
        format!("{prefix}.{figure}"),
        if ok { 1.0 } else { 0.0 },
        "bool",
    );
    if !ok {
        return Err("counters do not match the reports".into());
    }
    Ok(())
}

const APPEND: &str = "mutation($input: AppendTaskItemsInput!) { appendTaskItems(input: $input) { task { id counters { total } } rejected { index } } }";
const SEAL: &str =
    "mutation($id: ID!) { sealBulkTask(id: $id) { status sealed counters { total } } }";

/// `create`: one big createBulkTask, then the same items as chunks appended and sealed.
async fn create(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let (n, chunks, chunk) = if env.full() {
        (100_000, 10, 10_000)
    } else {
        (20_000, 10, 2_000)
    };
    let payloads: Vec<(String, String)> = (0..n)
        .map(|i| (format!("c-{i}"), client::payload_text(i)))
        .collect();

    // One call.
    let body = Gql::body(
        client::CREATE,
        json!({ "input": { "type": "bench.create", "items": client::new_items(0, n) } }),
    );
    let mark = rig.sampler.mark();
    let t = Instant::now();
    let data = rig.gql.post(body).await?;
    let secs = t.elapsed().as_secs_f64();
    let usage = rig.sampler.since(mark);
    if data["createBulkTask"]["task"]["counters"]["total"].as_u64() != Some(n as u64) {
        return Err(format!("create: unexpected answer {data}").into());
    }
    let mark = rig.sampler.mark();
    let t = Instant::now();
    raw::insert_items(&rig.pool, None, 0, &payloads).await?;
    let raw_secs = t.elapsed().as_secs_f64();
    let raw_usage = rig.sampler.since(mark);
    out.add("create", "single.items", n as f64, "items");
    out.add("create", "single.seconds", secs, "s");
    out.add("create", "single.items_per_s", n as f64 / secs, "items/s");
    out.add("create", "single.raw_seconds", raw_secs, "s");
    out.add("create", "single.ratio_to_raw", raw_secs / secs, "x");
    out.add("create", "single.time_vs_raw", secs / raw_secs, "x");
    out.add(
        "create",
        "single.peak_rss",
        usage.peak_rss_kib as f64 / 1024.0,
        "MiB",
    );
    cpu(out, "create", "single", &usage);
    cpu(out, "create", "single.raw", &raw_usage);

    // Chunks: create unsealed (not timed), append, seal.
    let data = rig
        .gql
        .query(
            client::CREATE,
            json!({ "input": { "type": "bench.append", "sealed": false, "items": [] } }),
        )
        .await?;
    let id = data["createBulkTask"]["task"]["id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    let bodies: Vec<Bytes> = (0..chunks)
        .map(|c| {
            Gql::body(
                APPEND,
                json!({ "input": { "taskId": id, "items": client::new_items(c * chunk, chunk) } }),
            )
        })
        .collect();
    let mark = rig.sampler.mark();
    let t = Instant::now();
    let mut total = 0;
    for body in bodies {
        let data = rig.gql.post(body).await?;
        total = data["appendTaskItems"]["task"]["counters"]["total"]
            .as_u64()
            .unwrap_or(0);
    }
    let sealed = rig.gql.query(SEAL, json!({ "id": id })).await?;
    let secs = t.elapsed().as_secs_f64();
    let usage = rig.sampler.since(mark);
    if total != (chunks * chunk) as u64 || sealed["sealBulkTask"]["sealed"] != json!(true) {
        return Err(format!("append: total {total}, seal answered {sealed}").into());
    }
    let task = raw::create_task(&rig.pool, false).await?;
    let mark = rig.sampler.mark();
    let t = Instant::now();
    for c in 0..chunks {
        raw::insert_items(
            &rig.pool,
            Some(task),
            c * chunk,
            &payloads[c * chunk..(c + 1) * chunk],
        )
        .await?;
    }
    raw::seal(&rig.pool, task).await?;
    let raw_secs = t.elapsed().as_secs_f64();
    let raw_usage = rig.sampler.since(mark);
    out.add("create", "append.items", (chunks * chunk) as f64, "items");
    out.add("create", "append.seconds", secs, "s");
    out.add(
        "create",
        "append.items_per_s",
        (chunks * chunk) as f64 / secs,
        "items/s",
    );
    out.add("create", "append.raw_seconds", raw_secs, "s");
    out.add("create", "append.ratio_to_raw", raw_secs / secs, "x");
    out.add("create", "append.time_vs_raw", secs / raw_secs, "x");
    out.add(
        "create",
        "append.peak_rss",
        usage.peak_rss_kib as f64 / 1024.0,
        "MiB",
    );
    cpu(out, "create", "append", &usage);
    cpu(out, "create", "append.raw", &raw_usage);
    Ok(())
}

const PAGE: &str = "query($first: Int!, $items: Int!) { bulkTasks(first: $first) { nodes { id type status counters { total finished } items(first: $items) { nodes { id index status } } } } }";

/// `read`: a page of 50 tasks with their first 20 items each.
async fn read(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let (tasks, items) = (200, 50);
    let (rates, secs, sat_secs) = if env.full() {
        (
            env.rates.clone().unwrap_or(vec![50.0, 100.0, 200.0]),
            10.0,
            15.0,
        )
    } else {
        (env.rates.clone().unwrap_or(vec![50.0]), 4.0, 5.0)
    };
    let concurrency = 8;
    eprintln!("bench: seeding {tasks} tasks x {items} items");
    let mut seeded = Vec::new();
    for t in 0..tasks {
        let (id, _) = client::create_task(&rig.gql, "bench.read", items).await?;
        // Some progress on every third task, so statuses and counters vary.
        if t % 3 == 0 {
            let results: Vec<Value> = (0..10)
                .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
                .collect();
            rig.gql
                .query(
                    REPORT,
                    json!({ "input": { "taskId": id, "results": results } }),
                )
                .await?;
        }
        seeded.push(id);
    }

    // The same JSON from both, before timing anything.
    let body = Gql::body(PAGE, json!({ "first": 50, "items": 20 }));
    let served: Value = serde_json::from_slice(&rig.gql.post_raw(body.clone()).await?)?;
    let produced: Value = serde_json::from_slice(&raw::read_page(&rig.pool, 50, 20).await?)?;
    if served != produced {
        return Err(format!(
            "the hand-written producer differs from the server:\nserver {}\nraw    {}",
            &served.to_string()[..600.min(served.to_string().len())],
            &produced.to_string()[..600.min(produced.to_string().len())]
        )
        .into());
    }
    out.add(
        "read",
        "response_bytes",
        serde_json::to_vec(&served)?.len() as f64,
        "bytes",
    );

    // Statements per request for several page sizes.
    for (first, items) in [(1, 1), (10, 5), (50, 20), (100, 10)] {
        let body = Gql::body(PAGE, json!({ "first": first, "items": items }));
        let before = rig.gql.sql_statements().await?;
        for _ in 0..10 {
            rig.gql.post(body.clone()).await?;
        }
        let per = (rig.gql.sql_statements().await? - before) as f64 / 10.0;
        out.add(
            "read",
            format!("sql_statements_per_request.tasks{first}_items{items}"),
            per,
            "statements",
        );
    }

    let request = {
        let gql = rig.gql.clone();
        move || {
            let (gql, body) = (gql.clone(), body.clone());
            async move {
                let bytes = gql.post_raw(body).await?;
                if bytes.starts_with(b"{\"data\"") && !bytes.windows(9).any(|w| w == b"\"errors\":")
                {
                    Ok(())
                } else {
                    Err(format!(
                        "bad answer: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    )
                    .into())
                }
            }
        }
    };
    // Warm up.
    stats::closed_loop(concurrency, Duration::from_secs(1), request.clone()).await?;

    for rate in rates {
        let mark = rig.sampler.mark();
        let mut run =
            stats::open_loop(rate, Duration::from_secs_f64(secs), request.clone()).await?;
        let usage = rig.sampler.since(mark);
        let p = format!("open{rate:.0}");
        out.add("read", format!("{p}.achieved"), run.per_second(), "req/s");
        out.add("read", format!("{p}.p50"), run.latency.p50(), "ms");
        out.add("read", format!("{p}.p99"), run.latency.p99(), "ms");
        out.add("read", format!("{p}.errors"), run.errors as f64, "requests");
        cpu(out, "read", &p, &usage);
    }

    let before = rig.gql.sql_statements().await?;
    let mark = rig.sampler.mark();
    let mut run =
        stats::closed_loop(concurrency, Duration::from_secs_f64(sat_secs), request).await?;
    let usage = rig.sampler.since(mark);
    let statements = rig.gql.sql_statements().await? - before;
    let pool = rig.pool.clone();
    let raw_mark = rig.sampler.mark();
    let mut raw_run =
        stats::closed_loop(concurrency, Duration::from_secs_f64(sat_secs), move || {
            let pool = pool.clone();
            async move {
                let bytes = raw::read_page(&pool, 50, 20).await?;
                std::hint::black_box(bytes);
                Ok(())
            }
        })
        .await?;
    let raw_usage = rig.sampler.since(raw_mark);
    out.add("read", "saturation.req_per_s", run.per_second(), "req/s");
    out.add("read", "saturation.p50", run.latency.p50(), "ms");
    out.add("read", "saturation.p99", run.latency.p99(), "ms");
    out.add("read", "saturation.errors", run.errors as f64, "requests");
    out.add(
        "read",
        "saturation.sql_statements_per_request",
        statements as f64 / run.requests.max(1) as f64,
        "statements",
    );
    out.add("read", "raw.req_per_s", raw_run.per_second(), "req/s");
    out.add("read", "raw.p50", raw_run.latency.p50(), "ms");
    out.add("read", "raw.p99", raw_run.latency.p99(), "ms");
    out.add(
        "read",
        "saturation.ratio_to_raw",
        run.per_second() / raw_run.per_second(),
        "x",
    );
    cpu(out, "read", "saturation", &usage);
    cpu(out, "read", "raw", &raw_usage);
    if run.errors > 0 {
        return Err(format!("{} read requests failed", run.errors).into());
    }
    Ok(())
}

const ITEMS_PAGE: &str = "query($id: ID!, $first: Int!, $after: String) { bulkTask(id: $id) { items(first: $first, after: $after, orderBy: { field: INDEX, direction: ASC }) { pageInfo { endCursor hasNextPage } nodes { id index status } } } }";

/// `deep`: a cursor page far down a big task against its first page.
async fn deep(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let (n, depth, rounds) = if env.full() {
        (110_000, 100_000, 300)
    } else {
        (11_000, 10_000, 60)
    };
    eprintln!("bench: seeding a task with {n} items");
    let (id, _) = client::create_task(&rig.gql, "bench.deep", n).await?;

    // Walk there with cursors, 100 at a time; the indexes must follow on.
    let t = Instant::now();
    let mut after = Value::Null;
    let mut next_index = 0;
    while next_index < depth {
        let data = rig
            .gql
            .query(
                ITEMS_PAGE,
                json!({ "id": id, "first": 100, "after": after }),
            )
            .await?;
        let page = &data["bulkTask"]["items"];
        for node in page["nodes"].as_array().ok_or("no nodes")? {
            if node["index"].as_u64() != Some(next_index) {
                return Err(format!("walking: expected index {next_index}, got {node}").into());
            }
            next_index += 1;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let walk = t.elapsed().as_secs_f64();
    out.add(
        "deep",
        "walk.ms_per_page_of_100",
        walk * 1000.0 / (depth / 100) as f64,
        "ms",
    );

    let first = Gql::body(
        ITEMS_PAGE,
        json!({ "id": id, "first": 20, "after": Value::Null }),
    );
    let deep = Gql::body(ITEMS_PAGE, json!({ "id": id, "first": 20, "after": after }));
    let data = rig.gql.post(deep.clone()).await?;
    if data["bulkTask"]["items"]["nodes"][0]["index"].as_u64() != Some(depth) {
        return Err(format!("the deep page does not start at {depth}").into());
    }
    let (mut a, mut b) = (Samples::default(), Samples::default());
    for _ in 0..rounds {
        let t = Instant::now();
        rig.gql.post(first.clone()).await?;
        a.push(t.elapsed());
        let t = Instant::now();
        rig.gql.post(deep.clone()).await?;
        b.push(t.elapsed());
    }
    out.add("deep", "items", n as f64, "items");
    out.add("deep", "first_page.p50", a.p50(), "ms");
    out.add("deep", "first_page.p99", a.p99(), "ms");
    out.add("deep", format!("depth{depth}.p50"), b.p50(), "ms");
    out.add("deep", format!("depth{depth}.p99"), b.p99(), "ms");
    out.add("deep", "ratio_p50", b.p50() / a.p50(), "x");
    Ok(())
}
