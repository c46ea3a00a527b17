//! The server under test: the release `bulkwatch` binary started as its own
//! process on a fresh database, and killed when the guard is dropped (also on
//! an error or a panic).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sea_orm::sqlx::{self, Connection};

use crate::{Backend, Res};

/// The PostgreSQL database the harness uses unless `BULKWATCH_BENCH_POSTGRES_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Finds the release server binary beside the bench binary; builds it once
/// when it is missing.
pub fn locate_binary() -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("the bench binary has no directory")?;
    let binary = dir.join("bulkwatch");
    if !binary.exists() {
        eprintln!(
            "bench: {} is missing; running `cargo build --release --bin bulkwatch` once",
            binary.display()
        );
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "bulkwatch"])
            .current_dir(workspace_root())
            .status()?;
        if !status.success() || !binary.exists() {
            return Err("building the release server failed".into());
        }
    }
    warn_if_stale(&binary);
    Ok(binary)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Warns when a server source file is newer than the binary: the figures
/// would then describe older code.
fn warn_if_stale(binary: &Path) {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return;
    };
    let root = workspace_root();
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack: Vec<PathBuf> = ["src", "entity/src", "migration/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(t) = entry.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(n, _)| t > *n)
            {
                newest = Some((t, path));
            }
        }
    }
    if let Some((t, path)) = newest
        && t > built
    {
        eprintln!(
            "bench: WARNING {} is newer than {}; run `cargo build --release` first for current figures",
            path.display(),
            binary.display()
        );
    }
}

fn free_port() -> Res<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh database for one scenario: an SQLite file in a temporary
/// directory, or a new PostgreSQL schema that is dropped afterwards.
pub struct FreshDb {
    /// What the server gets as DATABASE_URL, and the baselines connect to.
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl FreshDb {
    pub async fn new(backend: Backend) -> Res<FreshDb> {
        let dir = tempfile::Builder::new()
            .prefix("bulkwatch-bench-")
            .tempdir()?;
        match backend {
            Backend::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                );
                Ok(FreshDb { url, dir, pg: None })
            }
            Backend::Postgres => {
                let base = std::env::var("BULKWATCH_BENCH_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
                let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&base).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Ok(FreshDb {
                    url,
                    dir,
                    pg: Some((base, schema)),
                })
            }
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg.take() else {
            return;
        };
        // Drop may run inside the runtime: do the cleanup on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&mut conn)
                .await
                .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(done, Ok(Some(()))) {
            eprintln!("bench: could not drop schema; drop it by hand");
        }
    }
}

/// The running server; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    /// The admin API key the server printed on its first start, if it has keys.
    pub api_key: Option<String>,
    log: PathBuf,
}

impl Server {
    /// Starts the server; `settings` are more environment variables.
    pub async fn start(binary: &Path, db: &FreshDb, settings: &[(&str, &str)]) -> Res<Server> {
        Self::start_on(binary, db, free_port()?, "server", settings).await
    }

    /// Starts the server on `port`, logging to `<name>.log`: an instance
    /// behind a balancer comes back on the address the balancer knows.
    pub async fn start_on(
        binary: &Path,
        db: &FreshDb,
        port: u16,
        name: &str,
        settings: &[(&str, &str)],
    ) -> Res<Server> {
        let log = db.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env("BULKWATCH_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            // The harness floods one organisation on purpose.
            .env("BULKWATCH_RATE_LIMIT_ORG_RPS", "0")
            .env("BULKWATCH_RATE_LIMIT_KEY_RPS", "0")
            .env("BULKWATCH_RATE_LIMIT_ORG_COMPLEXITY", "0")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            api_key: None,
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
                && r.status().is_success()
            {
                server.api_key = first_start_key(&std::fs::read_to_string(&server.log)?);
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the server did not become ready; log:\n{}",
                    server.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash or an OOM kill would end it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the graceful exit; how it ended.
    pub async fn terminate(&mut self, timeout: Duration) -> Res<std::process::ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id())?;
        // SAFETY: a plain syscall on our own child's pid.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("no exit within {} s of SIGTERM", timeout.as_secs()).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the server still runs, or how it ended.
    pub fn exit_status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(None) => "still running".into(),
            Ok(Some(status)) => format!("exited: {status}"),
            Err(e) => format!("unknown: {e}"),
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// The key in "First start: an admin API key ...:\n\n    <key>".
fn first_start_key(log: &str) -> Option<String> {
    let mut lines = log.lines().skip_while(|l| !l.starts_with("First start"));
    lines.next()?;
    lines
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
