//! `faults --db sqlite`: the database file's filesystem fills up, then
//! turns read-only, under a running server. The database lives on a small
//! tmpfs mounted for the run (needs root; skipped with a note otherwise).
//! Writes must fail with DATABASE_UNAVAILABLE, never INTERNAL; reads go on;
//! the server log names the cause; once the filesystem has room or is
//! writable again the same process writes again; counters equal the rows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::raw::Pool;
use crate::resilient::Api;
use crate::server::{FreshDb, Server};
use crate::{Env, Figures, Res};

const CREATE: &str =
    "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }";
const READ: &str = "{ bulkTasks(first: 1) { totalCount } }";

/// A tmpfs mounted for the run; unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, size: &str) -> Res<Mount> {
        std::fs::create_dir_all(at)?;
        mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at)?;
        Ok(Mount(at.to_owned()))
    }

    fn remount(&self, options: &str) -> Res<()> {
        mount(&["-o", &format!("remount,{options}")], &self.0)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount(args: &[&str], at: &Path) -> Res<()> {
    let out = Command::new("mount").args(args).arg(at).output()?;
    if !out.status.success() {
        return Err(format!(
            "mount {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

fn task(k: usize, items: usize) -> serde_json::Value {
    let items: Vec<_> = (0..items)
        .map(|i| json!({ "clientItemId": format!("t{k}-{i}"), "payload": { "pad": "x".repeat(200) } }))
        .collect();
    json!({ "input": { "type": "faults.sqlite", "items": items } })
}

/// Creates tasks until one fails (or `tries` are used); how many succeeded.
async fn fill(api: &Api, from: usize, tries: usize) -> (usize, bool) {
    for k in 0..tries {
        if api.call(CREATE, task(from + k, 500)).await.is_none() {
            return (k, true);
        }
    }
    (tries, false)
}

/// Whether a write succeeds again within a few seconds.
async fn writes_again(api: &Api, k: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if api.call(CREATE, task(k, 10)).await.is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

pub async fn run(env: &Env, out: &mut Figures) -> Res<()> {
    let mut db = FreshDb::new(env.backend).await?;
    let at = db.dir.path().join("mnt");
    // Declared before the server, so it is unmounted after the server ends.
    let mount = match Mount::new(&at, "4m") {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "bench: faults on SQLite skipped: cannot mount a small filesystem here ({e})"
            );
            out.add("faults_sqlite", "skipped", 1.0, "bool");
            return Ok(());
        }
    };
    db.url = format!("sqlite://{}?mode=rwc", at.join("bench.db").display());
    let server = Server::start(&env.binary, &db, &[]).await?;
    let key = server
        .api_key
        .clone()
        .ok_or("the server printed no API key")?;
    let first = Api::new(&server.base, &key)?;
    let api = &first;
    let mut problems = Vec::new();

    // Disk full.
    let (made, failed) = fill(api, 0, 200).await;
    let full_errors = api.tally.db_unavailable_total();
    let reads_when_full = api.call(READ, json!({})).await.is_some();
    let log = std::fs::read_to_string(db.dir.path().join("server.log")).unwrap_or_default();
    let logged_full = log.contains("full");
    mount.remount("size=64m")?;
    let after_full = writes_again(api, 10_000).await;
    out.add("faults_sqlite", "tasks_before_full", made as f64, "tasks");
    out.add(
        "faults_sqlite",
        "full_database_unavailable",
        full_errors as f64,
        "responses",
    );
    out.add(
        "faults_sqlite",
        "reads_when_full",
        f64::from(u8::from(reads_when_full)),
        "bool",
    );
    out.add(
        "faults_sqlite",
        "log_names_full",
        f64::from(u8::from(logged_full)),
        "bool",
    );
    out.add(
        "faults_sqlite",
        "writes_after_room",
        f64::from(u8::from(after_full)),
        "bool",
    );
    if !failed || full_errors == 0 {
        problems.push(format!(
            "a full disk gave no DATABASE_UNAVAILABLE ({made} tasks made)"
        ));
    }
    if !reads_when_full {
        problems.push("reads failed while the disk was full".into());
    }
    if !logged_full {
        problems.push("the server log does not say the disk is full".into());
    }
    if !after_full {
        problems.push("no write succeeded once the disk had room again".into());
    }

    // Read-only: a filesystem with files open for writing cannot be
    // remounted read-only, so the server meets it at its next start.
    drop(server);
    mount.remount("ro")?;
    let (exited, text) = start_read_only(env, &db).await?;
    mount.remount("rw")?;
    let file = at.join("bench.db").display().to_string();
    let clear = text.contains(&file)
        && (text.contains("read-only") || text.contains("readonly") || text.contains("writable"));
    out.add(
        "faults_sqlite",
        "read_only_start_refused",
        f64::from(u8::from(exited)),
        "bool",
    );
    out.add(
        "faults_sqlite",
        "read_only_message_clear",
        f64::from(u8::from(clear)),
        "bool",
    );
    eprintln!("  start on a read-only filesystem said: {}", text.trim());
    if !exited || !clear {
        problems.push(format!(
            "a start on a read-only filesystem did not fail clearly: {}",
            text.trim()
        ));
    }
    let server = Server::start(&env.binary, &db, &[]).await?;
    let api = Api::new(&server.base, &key)?;
    let after_ro = writes_again(&api, 30_000).await;
    out.add(
        "faults_sqlite",
        "writes_after_read_write",
        f64::from(u8::from(after_ro)),
        "bool",
    );
    if !after_ro {
        problems.push("no write succeeded once the filesystem was writable again".into());
    }
    tally_add(&api.tally, &first.tally);

    let tally = &api.tally;
    out.add(
        "faults_sqlite",
        "internal_seen",
        tally.internal.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add(
        "faults_sqlite",
        "unexpected_errors",
        tally.unexpected.load(Ordering::Relaxed) as f64,
        "responses",
    );
    let bad = tally.internal.load(Ordering::Relaxed) + tally.unexpected.load(Ordering::Relaxed);
    if bad > 0 {
        problems.push(format!(
            "{bad} INTERNAL or unexpected errors; first: {:?}",
            tally.first_bad.lock().expect("lock")
        ));
    }
    let pool = Pool::connect(env.backend, &db.url, 1).await?;
    let mismatched = crate::invariant::mismatched(&pool).await?;
    pool.close().await;
    out.add(
        "faults_sqlite",
        "tasks_counters_mismatched",
        mismatched as f64,
        "tasks",
    );
    if mismatched > 0 {
        problems.push(format!(
            "{mismatched} tasks have counters that differ from their rows"
        ));
    }
    problems.extend(crate::invariant::panics(db.dir.path()));
    if !problems.is_empty() {
        eprintln!("bench: server log tail:\n{}", server.log_tail());
        return Err(problems.join("; ").into());
    }
    Ok(())
}

/// Adds what `from` saw to `to`, so one tally covers both servers.
fn tally_add(to: &crate::resilient::Tally, from: &crate::resilient::Tally) {
    for (t, f) in [
        (&to.internal, &from.internal),
        (&to.unexpected, &from.unexpected),
    ] {
        t.fetch_add(f.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    if let Some(bad) = from.first_bad.lock().expect("lock").clone() {
        to.first_bad.lock().expect("lock").get_or_insert(bad);
    }
}

/// Starts the server on the read-only database; whether it exited (within
/// 15 s) and what it wrote.
async fn start_read_only(env: &Env, db: &FreshDb) -> Res<(bool, String)> {
    let log = db.dir.path().join("read-only-start.txt");
    let mut child = Command::new(&env.binary)
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("BULKWATCH_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(
            db.dir.path().join("read-only-start.err"),
        )?)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let exited = loop {
        if let Some(status) = child.try_wait()? {
            break !status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(&log)?
        + &std::fs::read_to_string(db.dir.path().join("read-only-start.err"))?;
    Ok((exited, text))
}
