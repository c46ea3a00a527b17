// Every GraphQL document the dashboard sends, written once.

const TASK_FIELDS = `
  id type description status sealed cancelRequested version progress
  throughput estimatedCompletionAt createdAt updatedAt startedAt finishedAt
  error { code message }
  counters { total pending running succeeded failed skipped rejected cancelled finished }
`;

const DETAIL_FIELDS = `
  ${TASK_FIELDS}
  maxAttempts idempotencyKey failureReportUrl
  errorSummary(first: 12) { code count sampleMessage }
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
mutation CancelTask($id: ID!) { cancelBulkTask(id: $id) { ${DETAIL_FIELDS} } }`;

export const RETRY_MUTATION = `
mutation RetryFailed($input: RetryFailedItemsInput!) { retryFailedItems(input: $input) { ${DETAIL_FIELDS} } }`;

export const FAIL_MUTATION = `
mutation FailTask($input: FailBulkTaskInput!) { failBulkTask(input: $input) { ${DETAIL_FIELDS} } }`;

export const DELETE_MUTATION = `
mutation DeleteTask($id: ID!) { deleteBulkTask(id: $id) }`;
