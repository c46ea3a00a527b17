//! bulkwatch benchmark harness.
//!
//! `cargo run --release -p bench -- <scenario> --db sqlite|postgres --profile quick|full`
//!
//! Each scenario starts the release server as a separate process on a fresh
//! database, seeds it over GraphQL, measures it over HTTP, and measures in the
//! same run, on the same tables, what raw SQL (sqlx, prepared statements)
//! achieves for the same work. Figures go to stdout as a Markdown table and
//! one JSON line each; progress goes to stderr.

mod claim;
mod client;
mod deploy;
mod fanout;
mod faults;
mod flood;
mod invariant;
mod mixed;
mod notify;
mod notify_nats;
mod poll;
mod procfs;
mod raw;
mod raw_sqlite;
mod resilient;
mod results;
mod scenarios;
mod server;
mod sqlite_faults;
mod stats;
mod watchers;
mod webhooks;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, ValueEnum};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Small sizes and short runs: all scenarios in well under 3 minutes (CI smoke check).
    Quick,
    /// The sizes the figures in BENCHMARKS.md are made with.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Workers report item outcomes in batches (reportItemResults).
    Report,
    /// One 100k-item createBulkTask; 10 x 10k appendTaskItems + seal.
    Create,
    /// A page of 50 tasks with 20 items each: open loop at fixed rates, then saturation.
    Read,
    /// A cursor page at depth 100k against the first page.
    Deep,
    /// 1,000 and 10,000 WebSocket subscribers on one task, one change a second.
    Fanout,
    /// 1, then 4 workers claim (leases) and report a 20,000-item task until it is done.
    Claim,
    /// One task's items downloaded through its signed export link, NDJSON and CSV.
    Export,
    /// Pages of tasks filtered by metadata among 100,000 tasks.
    Filter,
    /// Reports to one task while the pruner deletes a finished 100,000-item task.
    Prune,
    /// 10,000 task finishes delivered as webhooks to a local receiver.
    Webhooks,
    /// 16 connections polling one task's status, against a hand-written axum + sqlx handler.
    Poll,
    /// Change events through PostgreSQL's LISTEN/NOTIFY with 1 to 16 listening instances.
    Notify,
    /// Workers, pollers, subscribers, dashboards and a producer at once: 10 minutes (30 s in quick).
    Mixed,
    /// The mixed load calm, then while a second organisation floods (rate limits on; not in `all`).
    MixedFlood,
    /// Three instances behind HAProxy (PostgreSQL) while instances are killed and stopped.
    Deploy,
    /// The database fails under load: connections terminated and a restart
    /// (PostgreSQL), a full and a read-only filesystem (SQLite).
    Faults,
    /// Every scenario in turn.
    All,
}

#[derive(Parser, Debug)]
#[command(about = "Benchmarks the bulkwatch release server against raw SQL baselines")]
struct Cli {
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "sqlite")]
    db: Backend,
    #[arg(long, value_enum, default_value = "quick")]
    profile: Profile,
    /// Request rates (per second) for the open-loop read runs; the profile's when left out.
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<f64>>,
}

/// One measured figure.
pub struct Figure {
    pub scenario: &'static str,
    pub figure: String,
    pub value: f64,
    pub unit: &'static str,
}

/// Figures of a run, printed at the end.
#[derive(Default)]
pub struct Figures {
    pub list: Vec<Figure>,
}

impl Figures {
    pub fn add(
        &mut self,
        scenario: &'static str,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        let figure = figure.into();
        eprintln!("  {scenario}.{figure} = {} {unit}", fmt_value(value));
        self.list.push(Figure {
            scenario,
            figure,
            value,
            unit,
        });
    }
}

fn fmt_value(v: f64) -> String {
    if (v == v.trunc() && v.abs() < 1e12) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// What every scenario gets.
pub struct Env {
    pub backend: Backend,
    pub profile: Profile,
    pub binary: PathBuf,
    pub rates: Option<Vec<f64>>,
}

impl Env {
    pub fn full(&self) -> bool {
        self.profile == Profile::Full
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Res<()> {
    raise_open_files();
    let binary = server::locate_binary()?;
    let env = Env {
        backend: cli.db,
        profile: cli.profile,
        binary,
        rates: cli.rates,
    };
    let list = match cli.scenario {
        Scenario::All => vec![
            Scenario::Report,
            Scenario::Create,
            Scenario::Read,
            Scenario::Deep,
            Scenario::Fanout,
            Scenario::Claim,
            Scenario::Export,
            Scenario::Filter,
            Scenario::Prune,
            Scenario::Webhooks,
            Scenario::Poll,
            Scenario::Notify,
            Scenario::Mixed,
        ],
        s => vec![s],
    };
    let started = Instant::now();
    let mut figures = Figures::default();
    let mut failed = Vec::new();
    for scenario in list {
        eprintln!(
            "bench: {scenario:?} on {} ({:?} profile)",
            env.backend.name(),
            env.profile
        );
        let t = Instant::now();
        if let Err(e) = scenarios::run(&env, scenario, &mut figures).await {
            eprintln!("bench: {scenario:?} failed: {e}");
            failed.push(format!("{scenario:?}: {e}"));
        }
        eprintln!(
            "bench: {scenario:?} took {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    print_figures(&env, &figures);
    eprintln!("bench: done in {:.1} s", started.elapsed().as_secs_f64());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; ").into())
    }
}

/// Lifts the soft RLIMIT_NOFILE to the hard one: the fanout scenario holds
/// 10,000 sockets here, and the server, spawned by us, inherits the limit.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok {
        eprintln!("bench: getrlimit(RLIMIT_NOFILE) failed");
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        } else {
            eprintln!("bench: setrlimit(RLIMIT_NOFILE) failed");
        }
    }
    eprintln!("bench: open files limit {}", limit.rlim_cur);
}

/// The open-files limit in force (after `raise_open_files`).
pub fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain syscall on a local struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_cur
}

fn print_figures(env: &Env, figures: &Figures) {
    let db = env.backend.name();
    println!("| scenario | figure | {db} | unit |");
    println!("| --- | --- | ---: | --- |");
    for f in &figures.list {
        println!(
            "| {} | {} | {} | {} |",
            f.scenario,
            f.figure,
            fmt_value(f.value),
            f.unit
        );
    }
    println!();
    for f in &figures.list {
        let line = serde_json::json!({
            "scenario": f.scenario,
            "db": db,
            "figure": f.figure,
            "value": if f.value.is_finite() { serde_json::json!(f.value) } else { serde_json::Value::Null },
            "unit": f.unit,
        });
        println!("{line}");
    }
}
