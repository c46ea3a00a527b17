import { TASK_STATUSES, type Stats, type TaskStatus } from '../api/types';
import { formatCount, humanStatus } from '../lib/format';

interface Props {
  stats: Stats | null;
  selected: TaskStatus | null;
  onSelect: (status: TaskStatus | null) => void;
}

/** Tasks per status; a chip filters the list by its status. */
export function StatusChips({ stats, selected, onSelect }: Props) {
  const count = (s: TaskStatus) => stats?.byStatus.find((b) => b.status === s)?.count ?? 0;
  return (
    <div className="chips" role="group" aria-label="Filter by status">
      <button type="button" className="chip" aria-pressed={selected === null} onClick={() => onSelect(null)}>
        All <span className="chip-count">{stats ? formatCount(stats.total) : '…'}</span>
      </button>
      {TASK_STATUSES.map((s) => (
        <button
          key={s}
          type="button"
          className={`chip chip-${s.toLowerCase()}${stats && count(s) === 0 ? ' is-empty' : ''}`}
          aria-pressed={selected === s}
          onClick={() => onSelect(selected === s ? null : s)}
          data-status={s}
        >
          <span className={`dot dot-${s.toLowerCase()}`} aria-hidden="true" />
          {humanStatus(s)} <span className="chip-count">{stats ? formatCount(count(s)) : '…'}</span>
        </button>
      ))}
    </div>
  );
}
