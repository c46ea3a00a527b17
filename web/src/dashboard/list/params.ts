import type { Direction, OrderField, TaskFilter, TaskStatus } from '../api/types';

/** Everything that decides which page of tasks the list shows. */
export interface ListParams {
  status: TaskStatus | null;
  search: string;
  type: string;
  hasFailures: boolean | null;
  createdAfter: string; // yyyy-mm-dd from a date input, or ''
  createdBefore: string;
  order: `${OrderField}:${Direction}`;
  pageSize: number;
  /** Cursor paging: at most one of these is set; `page` is only for display. */
  after: string | null;
  before: string | null;
  page: number;
}

export const DEFAULT_PARAMS: ListParams = {
  status: null,
  search: '',
  type: '',
  hasFailures: null,
  createdAfter: '',
  createdBefore: '',
  order: 'UPDATED_AT:DESC',
  pageSize: 20,
  after: null,
  before: null,
  page: 0,
};

export const ORDER_OPTIONS: { value: ListParams['order']; label: string }[] = [
  { value: 'UPDATED_AT:DESC', label: 'Recently updated' },
  { value: 'CREATED_AT:DESC', label: 'Newest first' },
  { value: 'CREATED_AT:ASC', label: 'Oldest first' },
  { value: 'PROGRESS:ASC', label: 'Least progress' },
  { value: 'PROGRESS:DESC', label: 'Most progress' },
  { value: 'FAILED:DESC', label: 'Most failures' },
  { value: 'TOTAL:DESC', label: 'Most items' },
  { value: 'FINISHED_AT:DESC', label: 'Recently finished' },
];

function dayStart(date: string): string {
  return new Date(`${date}T00:00:00`).toISOString();
}

function nextDayStart(date: string): string {
  const d = new Date(`${date}T00:00:00`);
  d.setDate(d.getDate() + 1);
  return d.toISOString();
}

/** The filter of the chips and of the live subscription: all but the status. */
export function baseFilter(p: ListParams): TaskFilter {
  const filter: TaskFilter = {};
  if (p.search.trim()) filter.search = p.search.trim();
  const types = p.type
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (types.length) filter.type = types;
  if (p.hasFailures != null) filter.hasFailures = p.hasFailures;
  // Dates are whole local days, inclusive at both ends.
  if (p.createdAfter) filter.createdAfter = new Date(Date.parse(dayStart(p.createdAfter)) - 1).toISOString();
  if (p.createdBefore) filter.createdBefore = nextDayStart(p.createdBefore);
  return filter;
}

export function listVariables(p: ListParams): Record<string, unknown> {
  const statsFilter = baseFilter(p);
  const filter: TaskFilter = p.status ? { ...statsFilter, status: [p.status] } : statsFilter;
  const [field, direction] = p.order.split(':') as [OrderField, Direction];
  const paging = p.before ? { last: p.pageSize, before: p.before } : { first: p.pageSize, after: p.after };
  return { ...paging, filter, statsFilter, orderBy: { field, direction } };
}

/** Where a task that appears live belongs: on top of the first page, for time-ordered lists. */
export function insertsOnTop(p: ListParams): boolean {
  return p.page === 0 && (p.order === 'UPDATED_AT:DESC' || p.order === 'CREATED_AT:DESC');
}

// The list keeps its filters when the user opens a task and comes back.
let remembered: ListParams = DEFAULT_PARAMS;
export const rememberParams = (p: ListParams) => void (remembered = p);
export const rememberedParams = () => remembered;
