import { ITEM_STATUSES, type Connection, type Item, type ItemStatus } from '../api/types';
import { StatusBadge } from '../components/StatusBadge';
import { formatCount, formatDateTime, humanStatus } from '../lib/format';
import { ITEMS_PAGE_SIZE, type ItemsParams } from './useTaskDetail';

interface Props {
  items: Connection<Item> | null;
  params: ItemsParams;
  loading: boolean;
  stale: boolean;
  onParams: (p: ItemsParams) => void;
  onRefresh: () => void;
}

export function ItemsTable({ items, params, loading, stale, onParams, onRefresh }: Props) {
  const from = params.page * ITEMS_PAGE_SIZE;
  const shown = items?.nodes.length ?? 0;
  const hasNext = Boolean(items?.pageInfo.hasNextPage || params.before);
  return (
    <section className="card" aria-labelledby="items-title">
      <div className="card-head">
        <h2 id="items-title">Items</h2>
        <label className="field field-inline">
          <span>Status</span>
          <select
            value={params.status ?? ''}
            onChange={(e) =>
              onParams({ status: (e.target.value || null) as ItemStatus | null, after: null, before: null, page: 0 })
            }
          >
            <option value="">All</option>
            {ITEM_STATUSES.map((s) => (
              <option key={s} value={s}>
                {humanStatus(s)}
              </option>
            ))}
          </select>
        </label>
        {stale && (
          <button type="button" className="btn btn-small" onClick={onRefresh}>
            Items changed · refresh
          </button>
        )}
      </div>
      <div className="table-wrap">
        <table className={`items${loading ? ' is-loading' : ''}`} aria-busy={loading}>
          <thead>
            <tr>
              <th scope="col" className="num">
                #
              </th>
              <th scope="col">Client id</th>
              <th scope="col">Status</th>
              <th scope="col" className="num">
                Attempts
              </th>
              <th scope="col">Worker</th>
              <th scope="col">Lease expires</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {items?.nodes.map((item) => (
              <tr key={item.id}>
                <td className="num">{item.index}</td>
                <td>
                  <code>{item.clientItemId ?? '—'}</code>
                </td>
                <td>
                  <StatusBadge status={item.status} />
                </td>
                <td className="num">{item.attempts}</td>
                <td>{item.workerId ?? '—'}</td>
                <td className="nowrap">{formatDateTime(item.leaseExpiresAt)}</td>
                <td className="error-cell">
                  {item.error ? (
                    <>
                      <code className="error-code">{item.error.code}</code> {item.error.message}
                    </>
                  ) : (
                    '—'
                  )}
                </td>
              </tr>
            ))}
            {items && shown === 0 && (
              <tr>
                <td colSpan={7} className="muted">
                  No items{params.status ? ` in status ${humanStatus(params.status).toLowerCase()}` : ''}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {items && (
        <nav className="pager" aria-label="Item pages">
          <span className="muted">
            {formatCount(shown ? from + 1 : 0)}–{formatCount(from + shown)} of {formatCount(items.totalCount)}
          </span>
          <button
            type="button"
            className="btn"
            disabled={params.page === 0}
            onClick={() =>
              onParams(
                params.page <= 1
                  ? { ...params, after: null, before: null, page: 0 }
                  : { ...params, before: items.pageInfo.startCursor, after: null, page: params.page - 1 },
              )
            }
          >
            ← Previous
          </button>
          <button
            type="button"
            className="btn"
            disabled={!hasNext}
            onClick={() => onParams({ ...params, after: items.pageInfo.endCursor, before: null, page: params.page + 1 })}
          >
            Next →
          </button>
        </nav>
      )}
    </section>
  );
}
