import { useCallback, useEffect, useState } from 'react';
import { takeFlash } from '../lib/flash';
import { formatCount } from '../lib/format';
import { useNow } from '../lib/useNow';
import { FilterBar } from './FilterBar';
import { Pager } from './Pager';
import { rememberParams, rememberedParams, type ListParams } from './params';
import { StatusChips } from './StatusChips';
import { TaskRow } from './TaskRow';
import { useTaskList } from './useTaskList';

const FIRST_PAGE = { after: null, before: null, page: 0 } as const;

export function TaskListView() {
  const [params, setParams] = useState<ListParams>(rememberedParams);
  useEffect(() => rememberParams(params), [params]);
  // Any change but paging itself goes back to the first page.
  const change = useCallback((patch: Partial<ListParams>) => setParams((p) => ({ ...p, ...FIRST_PAGE, ...patch })), []);
  const { state, loading, error, notice, reload } = useTaskList(params);
  const now = useNow(2000);
  const [flash] = useState(takeFlash);

  const items = state?.stats.items;
  return (
    <section className="list-view" aria-labelledby="list-title">
      <div className="view-head">
        <div>
          <h1 id="list-title">Bulk tasks</h1>
          {items && (
            <p className="muted">
              {formatCount(items.finished)} of {formatCount(items.total)} items finished
              {items.running > 0 && <> · {formatCount(items.running)} running</>}
              {items.failed > 0 && <> · {formatCount(items.failed)} failed</>}
            </p>
          )}
        </div>
      </div>
      {flash && (
        <p className="alert alert-ok" role="status">
          {flash}
        </p>
      )}
      <StatusChips stats={state?.stats ?? null} selected={params.status} onSelect={(status) => change({ status })} />
      <FilterBar params={params} onChange={change} />
      {notice && (
        <p className="alert alert-warn" role="status">
          {notice}
        </p>
      )}
      {error && (
        <div className="alert alert-error" role="alert">
          Could not load tasks: {error}{' '}
          <button type="button" className="btn btn-small" onClick={reload}>
            Try again
          </button>
        </div>
      )}
      {state && state.unseenNew > 0 && (
        <button type="button" className="alert alert-info new-tasks" onClick={() => change({})}>
          {formatCount(state.unseenNew)} new matching task{state.unseenNew === 1 ? '' : 's'}: show from the start
        </button>
      )}
      {state ? (
        <>
          {state.tasks.length ? (
            <ul className={`task-list${loading ? ' is-loading' : ''}`} aria-label="Tasks" aria-busy={loading}>
              {state.tasks.map((t) => (
                <TaskRow key={t.id} task={t} now={now} />
              ))}
            </ul>
          ) : (
            <div className="empty">
              <p>
                <strong>No tasks match.</strong>
              </p>
              <p className="muted">
                Create one with <code>createBulkTask</code> in <a href="/graphiql">GraphiQL</a>; it shows up here at
                once.
              </p>
            </div>
          )}
          <Pager
            page={params.page}
            pageSize={params.pageSize}
            shown={state.tasks.length}
            totalCount={state.totalCount}
            pageInfo={{
              ...state.pageInfo,
              // Coming back with `before`, the page we came from is still ahead.
              hasNextPage: state.pageInfo.hasNextPage || params.before != null,
            }}
            onPrevious={() =>
              setParams((p) =>
                p.page <= 1 ? { ...p, ...FIRST_PAGE } : { ...p, before: state.pageInfo.startCursor, after: null, page: p.page - 1 },
              )
            }
            onNext={() => setParams((p) => ({ ...p, after: state.pageInfo.endCursor, before: null, page: p.page + 1 }))}
            onPageSize={(pageSize) => change({ pageSize })}
          />
        </>
      ) : (
        !error && <p className="muted loading-text">Loading tasks…</p>
      )}
    </section>
  );
}
