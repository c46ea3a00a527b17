import type { Connection, Counters, Stats, Task, TaskStatus } from '../api/types';

// The list's data and how one live snapshot changes it. Counts are folded
// in locally from the last snapshot seen of each task, so a live list needs
// no further request; only a change of a task never seen (one beyond this
// page that existed before the page loaded) asks for the chips again.

interface Known {
  status: TaskStatus;
  version: number;
  counters: Counters;
}

export interface ListState {
  tasks: Task[];
  totalCount: number;
  pageInfo: Connection<Task>['pageInfo'];
  stats: Stats;
  known: Map<string, Known>;
  /** Client time when the page was requested: later tasks are new. */
  loadedAt: number;
  /** New matching tasks that were not inserted (later pages, other orders). */
  unseenNew: number;
}

export function initialState(page: Connection<Task>, stats: Stats, loadedAt: number): ListState {
  const known = new Map<string, Known>();
  for (const t of page.nodes) known.set(t.id, { status: t.status, version: t.version, counters: t.counters });
  return { tasks: page.nodes, totalCount: page.totalCount, pageInfo: page.pageInfo, stats, known, loadedAt, unseenNew: 0 };
}

function addStatus(byStatus: Stats['byStatus'], status: TaskStatus, delta: number): Stats['byStatus'] {
  const found = byStatus.some((s) => s.status === status);
  const next = found
    ? byStatus.map((s) => (s.status === status ? { ...s, count: s.count + delta } : s))
    : [...byStatus, { status, count: delta }];
  return next.filter((s) => s.count > 0);
}

function addItems(items: Stats['items'], next: Counters, prev: Counters | null): Stats['items'] {
  const d = (k: keyof Stats['items']) => next[k] - (prev ? prev[k] : 0);
  return {
    total: items.total + d('total'),
    finished: items.finished + d('finished'),
    failed: items.failed + d('failed'),
    running: items.running + d('running'),
  };
}

export interface EventContext {
  statusFilter: TaskStatus | null;
  insertOnTop: boolean;
  pageSize: number;
}

export interface EventResult {
  state: ListState;
  /** The chips could not be updated locally. */
  statsStale: boolean;
}

export function applySnapshot(state: ListState, task: Task, ctx: EventContext): EventResult {
  const prev = state.known.get(task.id);
  if (prev && task.version <= prev.version) return { state, statsStale: false };
  const isNew = !prev && Date.parse(task.createdAt) >= state.loadedAt - 1000;
  let stats = state.stats;
  let statsStale = false;
  if (prev) {
    stats = {
      total: stats.total,
      byStatus: addStatus(addStatus(stats.byStatus, prev.status, -1), task.status, 1),
      items: addItems(stats.items, task.counters, prev.counters),
    };
  } else if (isNew) {
    stats = {
      total: stats.total + 1,
      byStatus: addStatus(stats.byStatus, task.status, 1),
      items: addItems(stats.items, task.counters, null),
    };
  } else {
    statsStale = true;
  }
  const known = new Map(state.known);
  known.set(task.id, { status: task.status, version: task.version, counters: task.counters });

  const matches = ctx.statusFilter == null || ctx.statusFilter === task.status;
  const index = state.tasks.findIndex((t) => t.id === task.id);
  let { tasks, totalCount, unseenNew } = state;
  if (index >= 0) {
    tasks = tasks.map((t, i) => (i === index ? task : t));
  } else if (matches && (isNew || ctx.insertOnTop)) {
    if (isNew) totalCount += 1;
    if (ctx.insertOnTop) tasks = [task, ...tasks].slice(0, ctx.pageSize);
    else unseenNew += 1;
  }
  return { state: { ...state, tasks, totalCount, unseenNew, stats, known }, statsStale };
}
