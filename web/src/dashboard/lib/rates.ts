import { TERMINAL_STATUSES, type Task } from '../api/types';

// Throughput and ETA come from the counter changes this page has seen:
// finished items per second over a sliding window. Until two snapshots are
// far enough apart, the server's own estimate stands in.

interface Sample {
  at: number;
  finished: number;
}

const WINDOW_MS = 30_000;
const MIN_SPAN_MS = 1_000;
const samples = new Map<string, Sample[]>();

export function recordSnapshot(task: Task, at = Date.now()): void {
  const list = samples.get(task.id) ?? [];
  const last = list[list.length - 1];
  if (last && last.finished === task.counters.finished && at - last.at < WINDOW_MS / 2) return;
  list.push({ at, finished: task.counters.finished });
  // Keep one sample older than the window so the span covers it fully.
  while (list.length > 2 && (list[1]?.at ?? at) < at - WINDOW_MS) list.shift();
  samples.set(task.id, list);
}

export interface Rate {
  /** Finished items per second, or null when unknown. */
  perSecond: number | null;
  /** Seconds to the end at that rate, or null when unknown. */
  etaSeconds: number | null;
  /** Where the figure comes from: this page's observations or the server. */
  source: 'observed' | 'server' | 'none';
}

export function rateOf(task: Task, now = Date.now()): Rate {
  if (TERMINAL_STATUSES.has(task.status)) return { perSecond: null, etaSeconds: null, source: 'none' };
  const remaining = task.counters.pending + task.counters.running;
  const list = samples.get(task.id) ?? [];
  const first = list[0];
  const last = list[list.length - 1];
  if (first && last && last.at - first.at >= MIN_SPAN_MS && last.finished > first.finished) {
    // Measured to now, not to the last event, so a stalled task decays.
    const span = Math.max(last.at, now) - first.at;
    const perSecond = ((last.finished - first.finished) * 1000) / span;
    return { perSecond, etaSeconds: perSecond > 0 ? remaining / perSecond : null, source: 'observed' };
  }
  if (task.throughput != null) {
    const eta = task.estimatedCompletionAt ? (Date.parse(task.estimatedCompletionAt) - now) / 1000 : null;
    return { perSecond: task.throughput, etaSeconds: eta != null && eta > 0 ? eta : null, source: 'server' };
  }
  return { perSecond: null, etaSeconds: null, source: 'none' };
}
