import type { Counters } from '../api/types';
import { formatCount, percent } from '../lib/format';

// Order of the stacked segments: final outcomes first, then work in flight;
// pending is the empty track behind them.
const SEGMENTS = ['succeeded', 'failed', 'skipped', 'rejected', 'cancelled', 'running'] as const;

interface Props {
  counters: Counters;
  progress: number;
  /** Names the task for screen readers, e.g. its type and description. */
  label: string;
  size?: 'small' | 'large';
}

export function ProgressBar({ counters, progress, label, size = 'small' }: Props) {
  const value = percent(progress);
  const total = counters.total || 1;
  const parts = SEGMENTS.filter((k) => counters[k] > 0).map((k) => `${formatCount(counters[k])} ${k}`);
  if (counters.pending > 0) parts.push(`${formatCount(counters.pending)} pending`);
  const text = `${value}%${parts.length ? `: ${parts.join(', ')}` : ''}`;
  return (
    <div
      className={`progress progress-${size}`}
      role="progressbar"
      aria-label={`Progress of ${label}`}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={value}
      aria-valuetext={text}
      title={text}
      tabIndex={0}
    >
      {SEGMENTS.map((k) =>
        counters[k] > 0 ? (
          <span key={k} className={`seg seg-${k}`} style={{ width: `${(counters[k] / total) * 100}%` }} />
        ) : null,
      )}
    </div>
  );
}

/** The colour key for the stacked bar. */
export function ProgressLegend({ counters }: { counters: Counters }) {
  return (
    <ul className="legend" aria-label="Items by status">
      {[...SEGMENTS, 'pending' as const].map((k) => (
        <li key={k}>
          <span className={`swatch seg-${k}`} aria-hidden="true" />
          <span className="legend-name">{k}</span>
          <span className="legend-count">{formatCount(counters[k])}</span>
        </li>
      ))}
    </ul>
  );
}
