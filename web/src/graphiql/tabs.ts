// The README's tour, one tab each, instead of the generic welcome text.

const CREATE = `# Create a task with three items. The duplicate
# client id is rejected at admission and kept as a
# REJECTED item.
#
# Every data field needs an API key: open Headers
# below and paste
#   {"Authorization": "Bearer bw_..."}
mutation CreateTask {
  createBulkTask(input: {
    type: "sims.bulk_provision"
    description: "Provision SIMs for ACME"
    idempotencyKey: "acme-2026-11-22"
    items: [
      { clientItemId: "sim-1", payload: { iccid: "8901" } }
      { clientItemId: "sim-2", payload: { iccid: "8902" } }
      { clientItemId: "sim-2", payload: { iccid: "8903" } }
    ]
  }) {
    created
    task { id status counters { total pending rejected } }
    rejected { index clientItemId code message }
  }
}
`;

const REPORT = `# Report outcomes, naming items by client id,
# index or id. Put the task id from the first tab
# into Variables.
mutation ReportResults($task: ID!) {
  reportItemResults(input: {
    taskId: $task
    results: [
      { clientItemId: "sim-1", outcome: SUCCEEDED, result: { msisdn: "+4915112345" } }
      { index: 1, outcome: FAILED, error: { code: "HLR_TIMEOUT", message: "no answer from the HLR" } }
    ]
  }) {
    applied duplicates
    problems { position code message }
    task { status progress counters { succeeded failed finished } }
  }
}
`;

const PAGE = `# A page of tasks with their failed items nested,
# and the figures of the dashboard.
query TasksWithFailures {
  bulkTasks(first: 10, filter: { hasFailures: true }, orderBy: { field: UPDATED_AT, direction: DESC }) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id type status progress
      errorSummary { code count sampleMessage }
      items(first: 5, filter: { status: [FAILED] }) {
        nodes { index clientItemId error { code message } }
      }
    }
  }
  bulkTaskStats { total byStatus { status count } items { total finished } }
}
`;

const UPDATE = `# Hand back a result: a metadata merge patch, the
# result, a file kept elsewhere, and a signed link
# to the failed and rejected items as CSV (open it
# on this server; it needs no key).
mutation HandBack($task: ID!) {
  updateBulkTask(input: {
    id: $task
    metadataPatch: { campaign_id: "spring", credits: { reserved: 3, consumed: 1 } }
    result: { provisioned: 1 }
    addArtifacts: [{ name: "hlr_log", url: "https://files.example.com/hlr-2026-11-22.log", contentType: "text/plain" }]
  }) {
    version metadata result
    artifacts { name url }
    exportUrl(format: CSV, status: [FAILED, REJECTED])
  }
}
`;

const WATCH = `# Watch a task move: the current state first, then
# every change until the terminal state. Runs over
# the WebSocket on /graphql (graphql-transport-ws);
# the Headers are sent in connection_init.
subscription WatchTask($task: ID!) {
  bulkTaskUpdated(id: $task) { status progress version counters { pending running succeeded failed } }
}
`;

const TASK_VARIABLES = JSON.stringify({ task: 'paste the task id from CreateTask' }, null, 2);

export function tourTabs(headers: string) {
  return [
    { query: CREATE, headers },
    { query: REPORT, variables: TASK_VARIABLES, headers },
    { query: PAGE, headers },
    { query: UPDATE, variables: TASK_VARIABLES, headers },
    { query: WATCH, variables: TASK_VARIABLES, headers },
  ];
}
