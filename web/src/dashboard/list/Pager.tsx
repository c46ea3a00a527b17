import type { PageInfo } from '../api/types';
import { formatCount } from '../lib/format';

interface Props {
  page: number;
  pageSize: number;
  shown: number;
  totalCount: number;
  pageInfo: PageInfo;
  onPrevious: () => void;
  onNext: () => void;
  onPageSize: (size: number) => void;
}

export function Pager({ page, pageSize, shown, totalCount, pageInfo, onPrevious, onNext, onPageSize }: Props) {
  const from = shown ? page * pageSize + 1 : 0;
  return (
    <nav className="pager" aria-label="Pages">
      <span className="muted" aria-live="polite">
        {formatCount(from)}–{formatCount(page * pageSize + shown)} of {formatCount(totalCount)}
      </span>
      <label className="pager-size">
        <span>Per page</span>
        <select value={pageSize} onChange={(e) => onPageSize(Number(e.target.value))}>
          {[20, 50, 100].map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      <button type="button" className="btn" onClick={onPrevious} disabled={page === 0 || !pageInfo.startCursor}>
        ← Previous
      </button>
      <button type="button" className="btn" onClick={onNext} disabled={!pageInfo.hasNextPage || !pageInfo.endCursor}>
        Next →
      </button>
    </nav>
  );
}
