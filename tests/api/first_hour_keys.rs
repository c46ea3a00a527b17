//! The first hour, keys: `keys revoke` refuses a start that more than one
//! active key shares and revokes nothing, and a second start of the server
//! says how to replace a lost admin key.

use std::collections::HashMap;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use bulkwatch::domain::keys::{self, Scopes};
use bulkwatch::store::{DEFAULT_ORGANISATION_ID, Db};
use serde_json::json;
use uuid::Uuid;

use crate::crash::{bulkwatch, free_port};
use crate::helpers::{client_with_key, fresh_database, spawn_app};

/// The shortest start of a key that `keys revoke` takes: `bw_` and 3 hex digits.
const SHORTEST: usize = 6;

/// The fields of the `keys list` line whose prefix column is `token`'s
/// prefix: id, organisation, prefix, scopes, last used, status.
fn listed(list: &str, token: &str) -> Vec<String> {
    let prefix = &token[..11];
    let lines: Vec<&str> = list
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some(prefix))
        .collect();
    assert_eq!(lines.len(), 1, "one line lists {prefix}:\n{list}");
    lines[0].split_whitespace().map(str::to_owned).collect()
}

/// `bulkwatch keys revoke <named>` on `database_url`, which may fail.
fn revoke(database_url: &str, named: &str) -> Output {
    bulkwatch()
        .args(["keys", "revoke", named])
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the CLI runs")
}

#[tokio::test]
async fn keys_revoke_refuses_a_start_two_active_keys_share_and_revokes_nothing() {
    let app = spawn_app().await;
    // Revoke takes an id only whole, so an ambiguous start is a key prefix's.
    // There are 4,096 starts of 6 characters: two of 4,097 keys share one,
    // and by the birthday bound about 80 keys do. The keys are made in
    // process (a CLI run each would take minutes at worst); revoke is the CLI.
    let db = Db::open(&app.database_url, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let org: Uuid = DEFAULT_ORGANISATION_ID.parse().unwrap();
    let scopes = Scopes::parse_list("tasks:read").unwrap();
    let mut made: HashMap<String, (String, Uuid)> = HashMap::new();
    let (start, pair) = loop {
        assert!(made.len() <= 4096, "4,097 keys cannot all start apart");
        let new = keys::create_key(&db, org, scopes)
            .await
            .expect("a key is made");
        let start = new.token[..SHORTEST].to_owned();
        if let Some(earlier) = made.insert(start.clone(), (new.token.clone(), new.key.id)) {
            break (start, [earlier, (new.token, new.key.id)]);
        }
    };
    drop(db);
    let sharing = 2 + usize::from(app.admin_key.starts_with(&start));

    let output = revoke(&app.database_url, &start);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains(&format!("{sharing} active keys start with {start:?}")),
        "refused as ambiguous: {said}"
    );
    assert!(said.contains("name one by its id"), "{said}");
    for (_, id) in &pair {
        assert!(said.contains(&id.to_string()), "names {id}: {said}");
    }
    let list = app.cli(&["keys", "list"]);
    assert!(
        list.lines().all(|l| !l.trim_end().ends_with("revoked")),
        "nothing was revoked:\n{list}"
    );

    // An id is taken whole: its start names no key.
    let id_start = pair[0].1.to_string()[..8].to_owned();
    let output = revoke(&app.database_url, &id_start);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("no active key has the id or prefix"),
        "{said}"
    );

    // Named by its id, as the refusal says, one of the two is revoked alone.
    let [(first, first_id), (second, _)] = pair;
    let first_id = first_id.to_string();
    app.cli(&["keys", "revoke", first_id.as_str()]);
    let list = app.cli(&["keys", "list"]);
    assert_eq!(listed(&list, &first).last().unwrap(), "revoked", "{list}");
    assert_eq!(listed(&list, &second).last().unwrap(), "active", "{list}");
    assert_eq!(listed(&list, &app.admin_key).last().unwrap(), "active");
    let query = "{ bulkTasks { totalCount } }";
    let refused = app.post_as(Some(&first), query, json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused:#}"
    );
    let kept = app.post_as(Some(&second), query, json!({})).await;
    assert!(
        kept["data"]["bulkTasks"]["totalCount"].is_number(),
        "{kept:#}"
    );
}

/// Runs `bulkwatch serve` on `database_url` until it answers `/readyz`,
/// then kills it; returns its stdout and its stderr (logs at info).
async fn serve_once(database_url: &str) -> (String, String) {
    let port = free_port();
    let mut server = bulkwatch()
        .args(["serve"])
        .env("DATABASE_URL", database_url)
        .env("BULKWATCH_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .env_remove("BULKWATCH_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let client = client_with_key(None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if server.try_wait().unwrap().is_some() {
            let output = server.wait_with_output().unwrap();
            panic!(
                "the server stopped: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if Instant::now() > deadline {
            server.kill().ok();
            let output = server.wait_with_output().unwrap();
            panic!(
                "the server did not come up: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().expect("the server stops");
    let output = server.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_second_start_logs_how_to_make_a_new_admin_key() {
    let (database_url, _dir) = fresh_database().await;
    let (said, logged) = serve_once(&database_url).await;
    assert!(
        said.contains("First start: an admin API key"),
        "{said}\n{logged}"
    );
    let admin = said
        .split_whitespace()
        .find(|w| w.starts_with("bw_"))
        .expect("the first start prints its key")
        .to_owned();
    assert!(!logged.contains("has API keys already"), "{logged}");

    let (said, logged) = serve_once(&database_url).await;
    assert!(!said.contains("First start"), "no second admin key: {said}");
    let line = logged
        .lines()
        .find(|l| l.contains("this database has API keys already"))
        .unwrap_or_else(|| panic!("the second start says how to make a new admin key:\n{logged}"));
    assert!(
        line.contains("a lost admin key is replaced with") && line.contains("same DATABASE_URL"),
        "{line}"
    );
    let command = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("a command in backticks: {line}"));
    assert!(
        command.starts_with("bulkwatch keys create --org default"),
        "{line}"
    );

    // The command, run as logged, makes an active key of the default
    // organisation with what the first start's admin key may do.
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let made = bulkwatch()
        .args(&args)
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let replacement = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(replacement.starts_with("bw_"), "{replacement}");
    let list = bulkwatch()
        .args(["keys", "list"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let (first, new) = (listed(&list, &admin), listed(&list, &replacement));
    assert_eq!(new[1], "default", "{list}");
    assert_eq!(new.last().unwrap(), "active", "{list}");
    assert_eq!(
        new[3], first[3],
        "`{command}` makes a key with the first admin key's scopes:\n{list}"
    );
}
