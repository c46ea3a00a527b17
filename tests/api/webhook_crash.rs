//! Servers are killed with SIGKILL, again and again, while 1,000 tasks
//! finish and their webhooks are sent and retried. Afterwards every finish
//! was delivered (the receiver deduplicates by `webhook-id`), exactly one
//! message per finish and it matches the committed task, and no attempt
//! was sent twice: on PostgreSQL two instances share the outbox.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crash::{bulkwatch, free_port, wait_ready};
use crate::helpers::{client_with_key, fresh_database};
use crate::webhook_support::Receiver;

const TASKS: usize = 1_000;
const KILLS: usize = 6;
const CLIENTS: usize = 8;

fn start(database_url: &str, port: u16) -> Child {
    bulkwatch()
        .args(["serve"])
        .env("DATABASE_URL", database_url)
        .env("BULKWATCH_BIND", format!("127.0.0.1:{port}"))
        .env("BULKWATCH_WEBHOOK_ALLOW_PRIVATE", "true")
        .env(
            "BULKWATCH_WEBHOOK_RETRY_SCHEDULE",
            "0.2,0.4,0.8,1,1,1,1,1,1,1",
        )
        .env("BULKWATCH_WEBHOOK_POLL_MS", "50")
        .env("BULKWATCH_WEBHOOK_TIMEOUT_MS", "1000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts")
}

/// Posts to any live instance until the operation succeeds.
async fn post(client: &reqwest::Client, ports: &[u16], query: &str, variables: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 0.. {
        let port = ports[attempt % ports.len()];
        let sent = client
            .post(format!("http://127.0.0.1:{port}/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        if let Ok(response) = sent
            && let Ok(body) = response.json::<Value>().await
            && body.get("errors").is_none()
        {
            return body["data"].clone();
        }
        assert!(Instant::now() < deadline, "{query} never succeeded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_servers_deliver_every_finish_and_never_send_an_attempt_twice() {
    let (database_url, _dir) = fresh_database().await;
    let output = bulkwatch()
        .args(["keys", "create", "--org", "default", "--scopes"])
        .arg("tasks:read,tasks:write,items:report,webhooks:manage")
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let client = client_with_key(Some(&key));
    // One first attempt in five fails, so retries happen across the kills.
    let receiver = Receiver::start(|id, nth| {
        let hash = id
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        (
            if nth == 0 && hash % 5 == 0 { 500 } else { 200 },
            Duration::ZERO,
        )
    })
    .await;

    let instances = if database_url.starts_with("postgres") {
        2
    } else {
        1
    };
    let ports: Vec<u16> = (0..instances).map(|_| free_port()).collect();
    let mut servers: Vec<Child> = ports.iter().map(|p| start(&database_url, *p)).collect();
    for port in &ports {
        wait_ready(&client, *port).await;
    }
    let created = post(
        &client,
        &ports,
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } } }",
        json!({ "input": { "url": receiver.url, "events": ["TASK_FINISHED"] } }),
    )
    .await;
    let endpoint = created["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Clients create and finish tasks while the servers die under them.
    let ports = Arc::new(ports);
    let done = Arc::new(AtomicUsize::new(0));
    let work = (0..CLIENTS).map(|c| {
        let (client, ports, done) = (client.clone(), ports.clone(), done.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (c..TASKS).step_by(CLIENTS) {
                let data = post(
                    &client,
                    &ports,
                    "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }",
                    json!({ "input": { "type": "crash.hooks", "idempotencyKey": format!("t{i}"),
                                       "items": [{ "clientItemId": "only" }] } }),
                )
                .await;
                let id = data["createBulkTask"]["task"]["id"].as_str().unwrap().to_owned();
                post(
                    &client,
                    &ports,
                    "mutation($input: ReportItemResultsInput!) { reportItemResults(input: $input) { applied } }",
                    json!({ "input": { "taskId": id, "results": [{ "index": 0, "outcome": "SUCCEEDED" }] } }),
                )
                .await;
                ids.push(id);
                done.fetch_add(1, Ordering::Relaxed);
            }
            ids
        })
    });
    let work: Vec<_> = work.collect();
    // Kills land while tasks are still finishing, at varied moments.
    let mut kills = 0;
    while done.load(Ordering::Relaxed) < TASKS * 9 / 10 {
        tokio::time::sleep(Duration::from_millis(150 + 100 * (kills % 4) as u64)).await;
        let n = kills % servers.len();
        servers[n].kill().expect("SIGKILL");
        servers[n].wait().unwrap();
        servers[n] = start(&database_url, ports[n]);
        wait_ready(&client, ports[n]).await;
        kills += 1;
    }
    assert!(kills >= KILLS, "only {kills} kills while tasks finished");
    let mut tasks = Vec::new();
    for handle in work {
        tasks.extend(handle.await.unwrap());
    }
    assert_eq!(tasks.len(), TASKS);

    // Every finish arrives; duplicates (a send whose record a kill lost)
    // carry the same webhook-id.
    let finished: HashSet<&String> = tasks.iter().collect();
    let got = receiver
        .wait_until(Duration::from_secs(60), |r| {
            let delivered: HashSet<&Value> = r
                .iter()
                .filter(|r| r.accepted)
                .map(|r| &r.json["data"]["id"])
                .collect();
            delivered.len() >= TASKS
        })
        .await;
    let mut by_task: HashMap<String, HashSet<String>> = HashMap::new();
    for r in got.iter().filter(|r| r.accepted) {
        let task = r.json["data"]["id"].as_str().unwrap().to_owned();
        assert!(
            finished.contains(&task),
            "a message for an unknown task {task}"
        );
        assert_eq!(r.json["data"]["status"], json!("COMPLETED"), "{:#}", r.json);
        by_task.entry(task).or_default().insert(r.id.clone());
    }
    assert_eq!(by_task.len(), TASKS, "every finish was delivered");
    assert!(
        by_task.values().all(|ids| ids.len() == 1),
        "one message per finish, none for a change that did not commit"
    );

    // Each message's final snapshot is what the task holds now.
    let sample: Vec<&String> = tasks.iter().step_by(50).collect();
    for task in sample {
        let now = post(
            &client,
            &ports,
            "query($id: ID!) { bulkTask(id: $id) { version status } }",
            json!({ "id": task }),
        )
        .await;
        let message = got
            .iter()
            .find(|r| r.accepted && r.json["data"]["id"] == json!(task))
            .unwrap();
        assert_eq!(
            message.json["data"]["version"], now["bulkTask"]["version"],
            "{task}"
        );
    }

    // No attempt was sent twice: a message reached the receiver at most
    // as often as attempts were claimed for it.
    let mut receipts: HashMap<&str, i64> = HashMap::new();
    for r in &got {
        *receipts.entry(r.id.as_str()).or_default() += 1;
    }
    let mut after = Value::Null;
    let mut attempts: HashMap<String, i64> = HashMap::new();
    loop {
        let page = post(
            &client,
            &ports,
            "query($id: ID!, $after: String) { node(id: $id) { ... on WebhookEndpoint {
                deliveries(first: 100, after: $after) { nodes { id attempts status task { id } }
                pageInfo { hasNextPage endCursor } } } } }",
            json!({ "id": endpoint, "after": after }),
        )
        .await;
        let deliveries = &page["node"]["deliveries"];
        for d in deliveries["nodes"].as_array().unwrap() {
            let task = d["task"]["id"].as_str().unwrap().to_owned();
            let message = by_task[&task].iter().next().unwrap().clone();
            *attempts.entry(message).or_default() += d["attempts"].as_i64().unwrap();
        }
        if !deliveries["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = deliveries["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(attempts.len(), TASKS, "one delivery row per finish");
    for (message, received) in &receipts {
        let claimed = attempts.get(*message).copied().unwrap_or(0);
        assert!(
            *received <= claimed,
            "{message} reached the receiver {received} times in {claimed} attempts"
        );
    }
    for mut server in servers {
        server.kill().ok();
        server.wait().ok();
    }
}
