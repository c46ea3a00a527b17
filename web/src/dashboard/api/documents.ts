// Every GraphQL document the dashboard sends, written once.

const TASK_FIELDS = `
  id type description status sealed cancelRequested paused version progress
  throughput estimatedCompletionAt createdAt updatedAt startedAt finishedAt expiresAt
  error { code message }
  counters { total pending running succeeded failed skipped rejected cancelled finished }
`;

const DETAIL_FIELDS = `
  ${TASK_FIELDS}
  maxAttempts idempotencyKey priority notBefore deadline result lastHeartbeatAt
  failurePolicy { maxFailedItems maxFailureRatio minFinished nonRetryableCodes }
  artifacts { name url contentType sizeBytes createdAt }
  errorSummary(first: 12) { code count sampleMessage }
  failuresCsv: exportUrl(format: CSV, status: [FAILED, REJECTED])
  allCsv: exportUrl(format: CSV)
  allNdjson: exportUrl(format: NDJSON)
`;

const ITEM_FIELDS = `
  id index clientItemId status attempts workerId leaseExpiresAt updatedAt
  error { code message }
`;

const ITEMS_PAGE = `
  items(first: $itemsFirst, after: $itemsAfter, last: $itemsLast, before: $itemsBefore, filter: $itemsFilter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { ${ITEM_FIELDS} }
  }
`;

const ITEMS_VARS = `$itemsFirst: Int, $itemsAfter: String, $itemsLast: Int, $itemsBefore: String, $itemsFilter: TaskItemFilter`;

/** The whole list view in one round trip: a page of tasks and the status chips. */
export const LIST_QUERY = `
query TaskList($first: Int, $after: String, $last: Int, $before: String,
               $filter: BulkTaskFilter, $statsFilter: BulkTaskFilter, $orderBy: BulkTaskOrder) {
  bulkTasks(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { ${TASK_FIELDS} }
  }
  bulkTaskStats(filter: $statsFilter) {
    total
    byStatus { status count }
    items { total finished failed running }
  }
}`;

/** Chips only, when a change cannot be folded into them locally. */
export const STATS_QUERY = `
query TaskStats($statsFilter: BulkTaskFilter) {
  bulkTaskStats(filter: $statsFilter) {
    total
    byStatus { status count }
    items { total finished failed running }
  }
}`;

export const TASKS_SUBSCRIPTION = `
subscription TasksUpdated($filter: BulkTaskFilter) {
  bulkTasksUpdated(filter: $filter) { ${TASK_FIELDS} }
}`;

/** The detail view: the task, its failure summary and the first page of items. */
export const DETAIL_QUERY = `
query TaskDetail($id: ID!, ${ITEMS_VARS}) {
  bulkTask(id: $id) {
    ${DETAIL_FIELDS}
    ${ITEMS_PAGE}
  }
}`;

export const ITEMS_QUERY = `
query TaskItems($id: ID!, ${ITEMS_VARS}) {
  bulkTask(id: $id) { id ${ITEMS_PAGE} }
}`;

export const TASK_SUBSCRIPTION = `
subscription TaskUpdated($id: ID!) {
  bulkTaskUpdated(id: $id) { ${DETAIL_FIELDS} }
}`;

export const FAILURES_SUBSCRIPTION = `
subscription FailureFeed($taskId: ID!) {
  taskItemsUpdated(taskId: $taskId, status: [FAILED]) { ${ITEM_FIELDS} }
}`;

export const CANCEL_MUTATION = `
mutation CancelTask($id: ID!, $reason: String) { cancelBulkTask(id: $id, reason: $reason) { ${DETAIL_FIELDS} } }`;

export const PAUSE_MUTATION = `
mutation PauseTask($id: ID!, $reason: String) { pauseBulkTask(id: $id, reason: $reason) { ${DETAIL_FIELDS} } }`;

export const RESUME_MUTATION = `
mutation ResumeTask($id: ID!, $reason: String) { resumeBulkTask(id: $id, reason: $reason) { ${DETAIL_FIELDS} } }`;

export const PRIORITY_MUTATION = `
mutation SetPriority($id: ID!, $priority: Int!) { setTaskPriority(id: $id, priority: $priority) { ${DETAIL_FIELDS} } }`;

/** A page of the audit trail, newest first; read when its tab opens. */
export const AUDIT_QUERY = `
query AuditTrail($id: ID!, $first: Int, $after: String) {
  bulkTask(id: $id) {
    id
    auditTrail(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { at action actor reason details }
    }
  }
}`;

export const RETRY_MUTATION = `
mutation RetryFailed($input: RetryFailedItemsInput!) { retryFailedItems(input: $input) { ${DETAIL_FIELDS} } }`;

export const FAIL_MUTATION = `
mutation FailTask($input: FailBulkTaskInput!) { failBulkTask(input: $input) { ${DETAIL_FIELDS} } }`;

export const DELETE_MUTATION = `
mutation DeleteTask($id: ID!, $reason: String) { deleteBulkTask(id: $id, reason: $reason) }`;

// Webhooks: these need the `webhooks:manage` scope.

const ENDPOINT_FIELDS = `id url description events types enabled disabledReason createdAt`;

const DELIVERY_FIELDS = `
  id event taskVersion status attempts nextAttemptAt lastResponseStatus lastError
  lastDurationMs createdAt deliveredAt task { id type description }
`;

export const ENDPOINTS_QUERY = `
query WebhookEndpoints($first: Int, $after: String) {
  webhookEndpoints(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { ${ENDPOINT_FIELDS} }
  }
}`;

/** One endpoint's delivery log, newest first; read when it is opened. */
export const DELIVERIES_QUERY = `
query WebhookDeliveries($id: ID!, $first: Int, $after: String, $status: [WebhookDeliveryStatus!]) {
  node(id: $id) {
    ... on WebhookEndpoint {
      id
      deliveries(first: $first, after: $after, status: $status) {
        pageInfo { hasNextPage endCursor }
        nodes { ${DELIVERY_FIELDS} }
      }
    }
  }
}`;

export const CREATE_ENDPOINT_MUTATION = `
mutation CreateEndpoint($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { ${ENDPOINT_FIELDS} } }
}`;

export const UPDATE_ENDPOINT_MUTATION = `
mutation UpdateEndpoint($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) { ${ENDPOINT_FIELDS} }
}`;

export const DELETE_ENDPOINT_MUTATION = `
mutation DeleteEndpoint($id: ID!) { deleteWebhookEndpoint(id: $id) }`;

export const ROTATE_SECRET_MUTATION = `
mutation RotateSecret($id: ID!) {
  rotateWebhookSecret(id: $id) { secret endpoint { ${ENDPOINT_FIELDS} } }
}`;

export const TEST_WEBHOOK_MUTATION = `
mutation SendTest($id: ID!) { sendTestWebhook(endpointId: $id) { ${DELIVERY_FIELDS} } }`;

export const REDELIVER_MUTATION = `
mutation Redeliver($id: ID!) { redeliverWebhook(deliveryId: $id) { ${DELIVERY_FIELDS} } }`;
