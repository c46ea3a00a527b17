"""Seeds a fresh bulkwatch server with real data for the API fuzzer.

Random ids, cursors and lease tokens are refused before any rule runs, so
the fuzzer needs real ones to reach the rules: tasks in every state (with
items, failures, leases, results, a pause, a cancel), a webhook endpoint
with deliveries, and cursors of each list. Writes them as JSON (read by
`fuzz_hooks.py`) and as a schemathesis config whose dictionaries put them
where the schema asks for them.

    python fuzz_seed.py URL KEY SEED_JSON CONFIG_TOML
"""

import json
import sys
import urllib.request

URL, KEY, SEED_PATH, CONFIG_PATH = sys.argv[1:5]

TYPES = ["fuzz.import", "fuzz.export", "sims.bulk_provision"]
URLS = ["https://hooks.example.com/bulkwatch", "https://files.example.com/report.csv"]
ERROR_CODES = ["HLR_TIMEOUT", "INVALID_ICCID", "LEASE_EXPIRED", "DEADLINE_EXCEEDED"]
TASK = "id items(first: 100) { nodes { id clientItemId } }"


def gql(query, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        URL + "/graphql",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise SystemExit(f"seeding failed: {json.dumps(answer['errors'])}\nquery: {query}")
    return answer["data"]


def create(n, suffix, **extra):
    items = [
        {"clientItemId": f"{suffix}-{i}", "payload": {"iccid": f"89{i:04d}", "n": i}}
        for i in range(n)
    ]
    items.append({"clientItemId": f"{suffix}-r", "reject": {"code": "INSUFFICIENT_CREDITS", "message": "none left"}})
    task_input = {"type": TYPES[len(suffix) % len(TYPES)], "items": items, "metadata": {"campaign": suffix}, **extra}
    data = gql(f"mutation($i: CreateBulkTaskInput!) {{ createBulkTask(input: $i) {{ task {{ {TASK} }} }} }}", {"i": task_input})
    return data["createBulkTask"]["task"]


def report(task_id, results):
    gql(
        "mutation($i: ReportItemResultsInput!) { reportItemResults(input: $i) { applied } }",
        {"i": {"taskId": task_id, "results": results}},
    )


def one(field, task_id, **args):
    extra = "".join(f", {k}: {json.dumps(v)}" for k, v in args.items())
    gql(f'mutation($id: ID!) {{ {field}(id: $id{extra}) {{ id }} }}', {"id": task_id})


seed = {"tasks": [], "doomed": [], "items": [], "endpoints": [], "deliveries": [], "tokens": [], "cursors": [],
        "client_ids": []}

endpoint = gql(
    "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id } } }",
    {"i": {"url": URLS[0], "events": ["TASK_FINISHED", "TASK_CREATED", "TASK_STATUS_CHANGED"]}},
)["createWebhookEndpoint"]["endpoint"]["id"]
seed["endpoints"].append(endpoint)

# Three of each kind for the operations that work on a task, two for those
# that end or delete one (cancel, fail, delete): those come first in the
# fuzzer's order and would otherwise leave no live task for the rest.
for copy in range(5):
    tag = f"c{copy}"
    running = create(6, f"run{tag}", idempotencyKey=f"fuzz-{tag}", maxAttempts=2,
                     failurePolicy={"maxFailedItems": 50, "nonRetryableCodes": ["INVALID_ICCID"]})
    report(running["id"], [
        {"clientItemId": f"run{tag}-0", "outcome": "SUCCEEDED", "result": {"ok": True}},
        {"clientItemId": f"run{tag}-1", "outcome": "FAILED", "error": {"code": "INVALID_ICCID", "message": "bad"}},
        {"clientItemId": f"run{tag}-2", "outcome": "SKIPPED"},
    ])
    unsealed = create(3, f"open{tag}", sealed=False)
    leased = create(5, f"lease{tag}", priority=5)
    claim = gql(
        "mutation($i: ClaimTaskItemsInput!) { claimTaskItems(input: $i) { items { leaseToken } } }",
        {"i": {"taskId": leased["id"], "limit": 3, "leaseSeconds": 3600, "workerId": "fuzz"}},
    )
    seed["tokens"] += [c["leaseToken"] for c in claim["claimTaskItems"]["items"]]
    done = create(2, f"done{tag}")
    report(done["id"], [{"index": 0, "outcome": "SUCCEEDED"}, {"index": 1, "outcome": "FAILED",
                                                                   "error": {"code": "HLR_TIMEOUT", "message": "slow"}}])
    gql(
        "mutation($i: UpdateBulkTaskInput!) { updateBulkTask(input: $i) { id } }",
        {"i": {"id": done["id"], "metadataPatch": {"credits": {"used": 2}}, "result": {"file": "out.csv"},
               "addArtifacts": [{"name": "export_file", "url": URLS[1], "contentType": "text/csv", "sizeBytes": 10}]}},
    )
    paused = create(4, f"pause{tag}", notBefore="2030-01-01T00:00:00Z", deadline="2031-01-01T00:00:00Z")
    one("pauseBulkTask", paused["id"], reason="fuzz")
    cancelled = create(3, f"cancel{tag}")
    one("cancelBulkTask", cancelled["id"], reason="fuzz")
    for task in (running, unsealed, leased, done, paused, cancelled):
        seed["tasks" if copy < 3 else "doomed"].append(task["id"])
        seed["items"] += [n["id"] for n in task["items"]["nodes"]]
        seed["client_ids"] += [n["clientItemId"] for n in task["items"]["nodes"] if n["clientItemId"]]

delivery = gql("mutation($id: ID!) { sendTestWebhook(endpointId: $id) { id } }", {"id": endpoint})
seed["deliveries"].append(delivery["sendTestWebhook"]["id"])

# Cursors of every list, so `after`/`before` reach the keyset conditions.
pages = gql(
    """query($t: ID!) {
      a: bulkTasks(first: 2) { pageInfo { endCursor } }
      b: bulkTasks(first: 2, orderBy: { field: PROGRESS, direction: ASC }) { pageInfo { endCursor } }
      c: bulkTasks(first: 2, orderBy: { field: FINISHED_AT, direction: DESC }) { pageInfo { endCursor } }
      bulkTask(id: $t) {
        i: items(first: 2) { pageInfo { endCursor } }
        j: items(first: 2, orderBy: { field: UPDATED_AT, direction: DESC }) { pageInfo { endCursor } }
        auditTrail(first: 1) { pageInfo { endCursor } }
      }
      webhookEndpoints(first: 1) { pageInfo { endCursor } nodes { deliveries(first: 1) { pageInfo { endCursor } } } }
    }""",
    {"t": seed["tasks"][0]},
)
task = pages["bulkTask"]
for info in (pages["a"], pages["b"], pages["c"], task["i"], task["j"], task["auditTrail"], pages["webhookEndpoints"],
             pages["webhookEndpoints"]["nodes"][0]["deliveries"]):
    if info["pageInfo"]["endCursor"]:
        seed["cursors"].append(info["pageInfo"]["endCursor"])

seed["ids"] = seed["tasks"] + seed["doomed"] + seed["items"] + seed["endpoints"] + seed["deliveries"]
with open(SEED_PATH, "w") as f:
    json.dump(seed, f, indent=1)


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


# Where each dictionary applies: `<Type>.<field>.<argument path>`, `*` for any.
bindings = {
    "Query.bulkTask.id": ("tasks", 0.85),
    "Query.node.id": ("ids", 0.85),
    "Query.nodes.ids[*]": ("ids", 0.85),
    "Query.taskItem.id": ("items", 0.85),
    "Mutation.*.id": ("tasks", 0.85),
    "*.*.taskId": ("tasks", 0.85),
    "*.*.input.id": ("tasks", 0.85),
    "*.*.input.taskId": ("tasks", 0.85),
    "Mutation.cancelBulkTask.id": ("doomed", 0.85),
    "Mutation.deleteBulkTask.id": ("doomed", 0.85),
    "Mutation.failBulkTask.input.id": ("doomed", 0.85),
    "*.*.input.itemIds[*]": ("items", 0.85),
    "*.*.input.results[*].itemId": ("items", 0.6),
    "Mutation.updateWebhookEndpoint.input.id": ("endpoints", 0.85),
    "Mutation.deleteWebhookEndpoint.id": ("endpoints", 0.85),
    "Mutation.rotateWebhookSecret.id": ("endpoints", 0.85),
    "Mutation.sendTestWebhook.endpointId": ("endpoints", 0.85),
    "Mutation.redeliverWebhook.deliveryId": ("deliveries", 0.85),
    "*.*.input.leaseSeconds": ("counts", 0.6),
    "*.*.input.maxAttempts": ("counts", 0.5),
    "*.*.input.priority": ("small", 0.5),
    "Mutation.setTaskPriority.priority": ("small", 0.5),
    "Mutation.createBulkTask.input.type": ("types", 0.8),
    "Mutation.claimTaskItems.input.types[*]": ("types", 0.8),
    "*.*.input.results[*].leaseToken": ("tokens", 0.7),
    "Mutation.renewLeases.input.leaseTokens[*]": ("tokens", 0.7),
    "*.*.input.results[*].clientItemId": ("client_ids", 0.6),
    "*.*.input.results[*].index": ("small", 0.8),
    "*.*.after": ("cursors", 0.3),
    "*.*.before": ("cursors", 0.3),
    "*.*.first": ("small", 0.7),
    "*.*.last": ("small", 0.5),
    "*.*.offset": ("small", 0.5),
    "Mutation.claimTaskItems.input.limit": ("counts", 0.7),
    "*.*.input.url": ("urls", 0.7),
    "*.*.input.addArtifacts[*].url": ("urls", 0.7),
    "*.*.input.errorCodes[*]": ("codes", 0.7),
    "*.*.input.idempotencyKey": ("keys", 0.5),
}
dictionaries = {
    "ids": seed["ids"],
    "tasks": seed["tasks"],
    "doomed": seed["doomed"],
    "items": seed["items"],
    "endpoints": seed["endpoints"],
    "deliveries": seed["deliveries"],
    "types": TYPES,
    "tokens": seed["tokens"],
    "client_ids": seed["client_ids"],
    "cursors": seed["cursors"],
    "small": [0, 1, 2, 3, 5, 10, 20, 100],
    "counts": [1, 2, 3, 10, 60, 100],
    "urls": URLS,
    "codes": ERROR_CODES,
    "keys": ["fuzz-c0", "fuzz-c1"],
}
with open(CONFIG_PATH, "w") as f:
    for name, values in dictionaries.items():
        f.write(f"[dictionaries.{name}]\nvalues = {toml_list(values)}\n\n")
    f.write("[parameters]\n")
    for path, (name, probability) in bindings.items():
        f.write(f'"{path}" = {{ dictionary = "{name}", probability = {probability} }}\n')

print(f"seeded {len(seed['tasks'])} tasks, {len(seed['items'])} items, {len(seed['tokens'])} leases, "
      f"{len(seed['cursors'])} cursors, {len(seed['endpoints'])} webhook endpoint")
