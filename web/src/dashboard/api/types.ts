// Shapes of the fields the dashboard selects; names follow schema.graphql.

export const TASK_STATUSES = [
  'QUEUED',
  'RUNNING',
  'CANCELLING',
  'COMPLETED',
  'COMPLETED_WITH_FAILURES',
  'FAILED',
  'CANCELLED',
  'PAUSED',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const ITEM_STATUSES = [
  'PENDING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'SKIPPED',
  'REJECTED',
  'CANCELLED',
] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set<TaskStatus>([
  'COMPLETED',
  'COMPLETED_WITH_FAILURES',
  'FAILED',
  'CANCELLED',
]);

export interface Counters {
  total: number;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  skipped: number;
  rejected: number;
  cancelled: number;
  finished: number;
}

export interface TaskError {
  code: string;
  message: string;
}

export interface Task {
  id: string;
  type: string;
  description: string | null;
  status: TaskStatus;
  sealed: boolean;
  cancelRequested: boolean;
  version: number;
  progress: number;
  throughput: number | null;
  estimatedCompletionAt: string | null;
  error: TaskError | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** When the finished task will be deleted; null while it runs or when kept. */
  expiresAt: string | null;
  paused: boolean;
  counters: Counters;
}

export interface ErrorCodeCount {
  code: string;
  count: number;
  sampleMessage: string;
}

export interface Artifact {
  name: string;
  url: string;
  contentType: string | null;
  sizeBytes: number | null;
  createdAt: string;
}

export interface FailurePolicy {
  maxFailedItems: number | null;
  maxFailureRatio: number | null;
  minFinished: number;
  nonRetryableCodes: string[];
}

export interface TaskDetail extends Task {
  maxAttempts: number;
  idempotencyKey: string | null;
  errorSummary: ErrorCodeCount[];
  priority: number;
  notBefore: string | null;
  deadline: string | null;
  failurePolicy: FailurePolicy | null;
  result: unknown;
  artifacts: Artifact[];
  lastHeartbeatAt: string | null;
  /** Signed download links (no key needed), read with the task so they stay fresh with it. */
  failuresCsv: string;
  allCsv: string;
  allNdjson: string;
}

export interface AuditEntry {
  at: string;
  action: string;
  actor: string;
  reason: string | null;
  details: unknown;
}

export interface Item {
  id: string;
  index: number;
  clientItemId: string | null;
  status: ItemStatus;
  attempts: number;
  workerId: string | null;
  leaseExpiresAt: string | null;
  updatedAt: string;
  error: TaskError | null;
}

export interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export interface Connection<T> {
  totalCount: number;
  pageInfo: PageInfo;
  nodes: T[];
}

export interface StatusCount {
  status: TaskStatus;
  count: number;
}

export interface Stats {
  total: number;
  byStatus: StatusCount[];
  items: Pick<Counters, 'total' | 'finished' | 'failed' | 'running'>;
}

export type OrderField = 'CREATED_AT' | 'UPDATED_AT' | 'FINISHED_AT' | 'TOTAL' | 'FAILED' | 'PROGRESS';
export type Direction = 'ASC' | 'DESC';

export interface TaskFilter {
  status?: TaskStatus[];
  type?: string[];
  hasFailures?: boolean;
  createdAfter?: string;
  createdBefore?: string;
  search?: string;
}

export const WEBHOOK_EVENTS = ['TASK_CREATED', 'TASK_STATUS_CHANGED', 'TASK_FINISHED'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const DELIVERY_STATUSES = ['PENDING', 'RETRYING', 'SUCCEEDED', 'FAILED'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  events: WebhookEvent[];
  types: string[] | null;
  enabled: boolean;
  disabledReason: string | null;
  createdAt: string;
}

export interface WebhookDelivery {
  id: string;
  event: WebhookEvent;
  taskVersion: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string | null;
  lastResponseStatus: number | null;
  lastError: string | null;
  lastDurationMs: number | null;
  createdAt: string;
  deliveredAt: string | null;
  task: Pick<Task, 'id' | 'type' | 'description'> | null;
}

/** A new endpoint, or a rotated one, with its secret shown this once. */
export interface EndpointWithSecret {
  secret: string;
  endpoint: WebhookEndpoint;
}
