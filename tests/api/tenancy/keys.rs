//! The key CLI, and a real server process whose logs and error messages
//! never hold a key or its hash.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------
// The key CLI
// ---------------------------------------------------------------------------

/// Runs the binary on `database_url`; returns (success, stdout, stderr).
fn run_cli(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bulkwatch"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the CLI runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn key_line<'a>(list: &'a str, key: &str) -> &'a str {
    list.lines()
        .find(|l| l.contains(&key[..11]))
        .unwrap_or_else(|| panic!("no line for {}:\n{list}", &key[..11]))
}

#[tokio::test]
async fn the_key_cli_lists_without_secrets_and_refuses_bad_input() {
    let app = spawn_app().await;
    let db = app.database_url.as_str();

    let (success, created, stderr) = run_cli(
        db,
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "tasks:read,items:report",
        ],
    );
    assert!(success, "{stderr}");
    let key = created.trim().to_owned();
    assert!(
        key.starts_with("bw_") && key.len() > 40 && !key.contains(char::is_whitespace),
        "stdout is the key alone: {created:?}"
    );
    assert!(
        !stderr.contains(&key) && !stderr.contains(&key[11..]),
        "the key went to stderr: {stderr}"
    );

    let list = app.cli(&["keys", "list"]);
    let line = key_line(&list, &key);
    assert!(line.contains("default"), "{line}");
    assert!(
        line.contains("tasks:read")
            && line.contains("items:report")
            && !line.contains("tasks:write"),
        "{line}"
    );
    assert!(line.contains("active") && line.contains("never"), "{line}");
    let admin_line = key_line(&list, &app.admin_key);
    assert!(
        admin_line.contains("tasks:read,tasks:write,items:report")
            || admin_line.contains("tasks:write"),
        "{admin_line}"
    );
    for secret in [&key, &app.admin_key] {
        assert!(
            !list.contains(secret.as_str()),
            "keys list shows a secret:\n{list}"
        );
        assert!(
            !list.contains(&secret[11..]),
            "keys list shows the secret part of a key:\n{list}"
        );
        assert!(
            !list.contains(&secret[11..27]),
            "keys list shows part of a secret:\n{list}"
        );
        assert!(
            !list.contains(&sha256_hex(secret)),
            "keys list shows a key hash:\n{list}"
        );
    }

    // Using a key records when; revoking it shows in the list and refuses it.
    // The time is recorded off the request's path, so it may land just after.
    app.data_as(&key, "{ bulkTasks { totalCount } }", json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut list = app.cli(&["keys", "list"]);
    while key_line(&list, &key).contains("never") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        list = app.cli(&["keys", "list"]);
    }
    assert!(
        !key_line(&list, &key).contains("never"),
        "last used not recorded:\n{list}"
    );
    let id = key_id(&list, &key);
    app.cli(&["keys", "revoke", &id]);
    // A key checked a moment ago is believed for up to the cache's bound.
    tokio::time::sleep(bulkwatch::auth::KEY_CACHE_TTL).await;
    let list = app.cli(&["keys", "list"]);
    assert!(key_line(&list, &key).contains("revoked"), "{list}");
    assert!(key_line(&list, &app.admin_key).contains("active"), "{list}");
    refused(
        &app,
        Some(&key),
        "{ bulkTasks { totalCount } }",
        json!({}),
        "bulkTasks",
        "UNAUTHENTICATED",
    )
    .await;
    let (success, _, _) = run_cli(db, &["keys", "revoke", &id]);
    assert!(!success, "revoking a revoked key succeeded");

    // Refusals: non-zero exit, no key printed, no key made.
    let lines_before = app.cli(&["keys", "list"]).lines().count();
    for args in [
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "tasks:read,tasks:admin",
        ][..],
        &["keys", "create", "--org", "default", "--scopes", "admin"],
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "TASKS:READ",
        ],
        &["keys", "create", "--org", "default", "--scopes", ""],
        &[
            "keys",
            "create",
            "--org",
            "no-such-org",
            "--scopes",
            "tasks:read",
        ],
        &[
            "keys",
            "create",
            "--org",
            "Default",
            "--scopes",
            "tasks:read",
        ],
        &["keys", "revoke", "00000000-0000-0000-0000-000000000000"],
        &["keys", "revoke", "not-a-uuid"],
    ] {
        let (success, stdout, stderr) = run_cli(db, args);
        assert!(!success, "bulkwatch {args:?} succeeded: {stdout}");
        assert!(
            !stdout.contains("bw_") && !stderr.contains("bw_"),
            "bulkwatch {args:?} printed a key: {stdout} {stderr}"
        );
        assert!(
            !stderr.trim().is_empty(),
            "bulkwatch {args:?} failed without saying why"
        );
    }
    assert_eq!(
        app.cli(&["keys", "list"]).lines().count(),
        lines_before,
        "a refused command made a key"
    );

    // Organisations: a second one with the same name is refused.
    app.cli(&["orgs", "create", "acme"]);
    let (success, _, _) = run_cli(db, &["orgs", "create", "acme"]);
    assert!(!success, "a duplicate organisation was created");
    let (success, _, _) = run_cli(db, &["orgs", "create", "default"]);
    assert!(!success, "a second `default` organisation was created");
    // (`key_for` would try to create it again: the org has no key yet.)
    let acme = app
        .cli(&["keys", "create", "--org", "acme", "--scopes", "tasks:read"])
        .trim()
        .to_owned();
    assert!(key_line(&app.cli(&["keys", "list"]), &acme).contains("acme"));
}

// ---------------------------------------------------------------------------
// A real server process: keys never reach the logs or error messages
// ---------------------------------------------------------------------------

struct Server {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    address: String,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Server {
    fn start(database_url: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulkwatch"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BULKWATCH_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bulkwatch serve starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let out_pipe = child.stdout.take().unwrap();
        let err_pipe = child.stderr.take().unwrap();
        let out_buf = stdout.clone();
        let err_buf = stderr.clone();
        let readers = vec![
            std::thread::spawn(move || {
                for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                    let mut buf = out_buf.lock().unwrap();
                    buf.push_str(&line);
                    buf.push('\n');
                }
            }),
            std::thread::spawn(move || {
                for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                    let plain = strip_ansi(&line);
                    if let Some(at) = plain.find("address=") {
                        let rest = &plain[at + "address=".len()..];
                        let address: String = rest
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != ',')
                            .collect();
                        let _ = tx.send(address.trim_matches('"').to_owned());
                    }
                    let mut buf = err_buf.lock().unwrap();
                    buf.push_str(&line);
                    buf.push('\n');
                }
            }),
        ];
        let address = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server never logged its address; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        assert!(address.starts_with("127.0.0.1:"), "address {address:?}");
        Server {
            child,
            stdout,
            stderr,
            address: format!("http://{address}"),
            readers,
        }
    }

    /// Stdout once the line holding `needle` (or `wait` passing) has been read.
    fn stdout_after(&self, needle: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let text = self.stdout.lock().unwrap().clone();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server and returns everything it wrote to (stdout, stderr).
    fn stop(mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (out, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_key_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '}' || c == '{')
        .find(|w| w.starts_with("bw_") && w.len() > 20)
        .map(str::to_owned)
}

async fn raw_post(address: &str, authorization: Option<&str>, query: &str) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": query }));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn keys_and_their_hashes_never_reach_logs_or_error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());

    let server = Server::start(&database_url);
    let stdout = server.stdout_after("bw_", Duration::from_secs(10));
    let admin =
        first_key_in(&stdout).unwrap_or_else(|| panic!("no first-start key on stdout:\n{stdout}"));

    // A second key, used while valid, then revoked through the CLI while the server runs.
    let (success, created, stderr) = run_cli(
        &database_url,
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "tasks:read",
        ],
    );
    assert!(success, "{stderr}");
    let revoked = created.trim().to_owned();
    assert!(
        !stderr.contains(&revoked[11..]),
        "`keys create` wrote the key to stderr: {stderr}"
    );
    let wrong = format!("bw_{}", "0123456789abcdef".repeat(4));
    let unknown_shape = format!("{}{}", &admin[..40], "0".repeat(admin.len() - 40));

    let mut responses = Vec::new();
    let list = "{ bulkTasks { totalCount nodes { id } } }";
    let create_q = r#"mutation { createBulkTask(input: { type: "logs", items: [{ clientItemId: "a" }] }) { task { id } } }"#;
    let (status, body) =
        raw_post(&server.address, Some(&format!("Bearer {admin}")), create_q).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("\"errors\""), "the admin key works: {body}");
    let (_, body) = raw_post(&server.address, Some(&format!("Bearer {revoked}")), list).await;
    assert!(
        !body.contains("\"errors\""),
        "the second key works before revocation: {body}"
    );
    let (_, body) = raw_post(
        &server.address,
        Some(&format!("Bearer {revoked}")),
        create_q,
    )
    .await;
    assert!(
        body.contains("FORBIDDEN"),
        "a read key cannot create: {body}"
    );
    responses.push(body);

    let list_out = run_cli(&database_url, &["keys", "list"]).1;
    let id = key_id(&list_out, &revoked);
    let (success, _, stderr) = run_cli(&database_url, &["keys", "revoke", &id]);
    assert!(success, "{stderr}");
    tokio::time::sleep(bulkwatch::auth::KEY_CACHE_TTL).await;

    for authorization in [
        format!("Bearer {revoked}"),
        format!("Bearer {wrong}"),
        format!("Bearer {unknown_shape}"),
        format!("Basic {admin}"),
        format!("Bearer {admin} {revoked}"),
        format!("Bearer {revoked}x"),
        admin.clone(),
        format!("Token {revoked}"),
    ] {
        for query in [list, create_q] {
            let (_, body) = raw_post(&server.address, Some(&authorization), query).await;
            assert!(
                body.contains("UNAUTHENTICATED"),
                "{authorization:?} was not refused: {body}"
            );
            responses.push(body);
        }
        // The failure report route too.
        let response = reqwest::Client::new()
            .get(format!("{}/reports/x/failures.ndjson", server.address))
            .header("Authorization", &authorization)
            .send()
            .await
            .unwrap();
        responses.push(response.text().await.unwrap_or_default());
    }
    // Errors that echo input: a malformed id and a bad cursor, with a valid key.
    for query in [
        r#"{ bulkTask(id: "bw_notanid") { id } }"#,
        r#"{ bulkTasks(after: "bw_notacursor") { totalCount } }"#,
    ] {
        let (_, body) = raw_post(&server.address, Some(&format!("Bearer {admin}")), query).await;
        assert!(body.contains("\"errors\""), "{body}");
        responses.push(body);
    }

    let (_, stderr) = server.stop();
    assert!(
        stderr.contains("127.0.0.1"),
        "stderr was captured:\n{stderr}"
    );
    assert!(
        stderr.contains("UNAUTHENTICATED"),
        "the refused requests were logged:\n{stderr}"
    );
    let secrets = [
        admin.clone(),
        revoked.clone(),
        wrong.clone(),
        unknown_shape.clone(),
    ];
    for secret in &secrets {
        let hash = sha256_hex(secret);
        let checks = [
            (secret.clone(), "the key"),
            (secret[11..].to_owned(), "the secret part of the key"),
            (hash.clone(), "the key's SHA-256"),
            (hash.to_uppercase(), "the key's SHA-256 in upper case"),
            (hash[..32].to_owned(), "half of the key's SHA-256"),
        ];
        for (needle, what) in &checks {
            let leaks: Vec<&str> = stderr
                .lines()
                .filter(|l| l.contains(needle.as_str()))
                .collect();
            assert!(
                leaks.is_empty(),
                "{what} ({}…) appears in the server's logs:\n{}",
                &secret[..11],
                leaks.join("\n")
            );
            for body in &responses {
                assert!(
                    !body.contains(needle.as_str()),
                    "{what} appears in a response to a client: {body}"
                );
            }
        }
    }

    // A restart on the same database makes no new key and prints none.
    let server = Server::start(&database_url);
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = raw_post(&server.address, Some(&format!("Bearer {admin}")), list).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("totalCount\":1"),
        "the first key still works after a restart: {body}"
    );
    let (stdout, stderr) = server.stop();
    assert!(
        !stdout.contains("bw_"),
        "a restart printed a key:\n{stdout}"
    );
    assert!(
        first_key_in(&stderr).is_none(),
        "a restart logged a key:\n{stderr}"
    );
    let keys = run_cli(&database_url, &["keys", "list"]).1;
    assert_eq!(
        keys.lines().count(),
        3,
        "header, the admin key and the revoked one:\n{keys}"
    );
}
