import type { Task } from '../api/types';
import { formatDuration, formatRate } from '../lib/format';
import { rateOf } from '../lib/rates';

/** Throughput and time left, or how long a finished task took. */
export function RateText({ task, now }: { task: Task; now: number }) {
  if (task.finishedAt) {
    const took = task.startedAt ? (Date.parse(task.finishedAt) - Date.parse(task.startedAt)) / 1000 : null;
    return <span className="rate muted">{took != null ? `took ${formatDuration(took)}` : 'finished'}</span>;
  }
  const rate = rateOf(task, now);
  if (rate.perSecond == null) return <span className="rate muted">{task.status === 'QUEUED' ? 'waiting' : '—'}</span>;
  return (
    <span className="rate" title={rate.source === 'observed' ? 'Measured on this page' : 'Server estimate'}>
      {formatRate(rate.perSecond)}
      {rate.etaSeconds != null && <span className="muted"> · ETA {formatDuration(rate.etaSeconds)}</span>}
    </span>
  );
}
