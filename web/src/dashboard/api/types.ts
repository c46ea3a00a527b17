// Shapes of the fields the dashboard selects; names follow schema.graphql.

export const TASK_STATUSES = [
  'QUEUED',
  'RUNNING',
  'CANCELLING',
  'COMPLETED',
  'COMPLETED_WITH_FAILURES',
  'FAILED',
  'CANCELLED',
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
  counters: Counters;
}

export interface ErrorCodeCount {
  code: string;
  count: number;
  sampleMessage: string;
}

export interface TaskDetail extends Task {
  maxAttempts: number;
  idempotencyKey: string | null;
  errorSummary: ErrorCodeCount[];
  failureReportUrl: string | null;
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
