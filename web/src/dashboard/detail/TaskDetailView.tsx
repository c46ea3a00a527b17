import { useState } from 'react';
import { useNow } from '../lib/useNow';
import { AuditTab } from './AuditTab';
import { ControlCard } from './ControlCard';
import { DetailTabs, type DetailTab } from './DetailTabs';
import { ErrorChart } from './ErrorChart';
import { FailureFeed } from './FailureFeed';
import { ItemsTable } from './ItemsTable';
import { TaskActions, type Action } from './TaskActions';
import { ResultCard } from './ResultCard';
import { TaskHeader } from './TaskHeader';
import { useTaskDetail } from './useTaskDetail';

export function TaskDetailView({ id }: { id: string }) {
  const detail = useTaskDetail(id);
  const [pending, setPending] = useState<Action | null>(null);
  const [tab, setTab] = useState<DetailTab>('items');
  const now = useNow(1000);
  const { task } = detail;

  return (
    <section className="detail-view">
      <a href="#/" className="back">
        ← All tasks
      </a>
      {detail.notFound ? (
        <div className="empty">
          <p>
            <strong>This task does not exist</strong> (or no longer: it may have been deleted).
          </p>
          <a href="#/">Back to the list</a>
        </div>
      ) : detail.error && !task ? (
        <div className="alert alert-error" role="alert">
          Could not load the task: {detail.error}{' '}
          <button type="button" className="btn btn-small" onClick={detail.reload}>
            Try again
          </button>
        </div>
      ) : !task ? (
        <p className="muted loading-text">Loading the task…</p>
      ) : (
        <>
          {detail.notice && (
            <p className="alert alert-warn" role="status">
              {detail.notice}
            </p>
          )}
          <TaskHeader task={task} live={detail.live} now={now} />
          <TaskActions task={task} pending={pending} onPending={setPending} onTask={detail.applyTask} />
          <div className="detail-grid">
            <ControlCard task={task} onTask={detail.applyTask} />
            <ResultCard task={task} />
          </div>
          <div className="detail-grid">
            <ErrorChart
              summary={task.errorSummary}
              canRetry={task.counters.failed > 0}
              onRetry={(code) => setPending({ kind: 'retry', code })}
            />
            <FailureFeed feed={detail.feed} now={now} />
          </div>
          <DetailTabs tab={tab} onTab={setTab} />
          <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
            {tab === 'items' ? (
              <ItemsTable
                items={detail.items}
                params={detail.itemsParams}
                loading={detail.itemsLoading}
                stale={task.version > detail.itemsVersion}
                onParams={detail.setItemsParams}
                onRefresh={detail.reloadItems}
              />
            ) : (
              <AuditTab taskId={task.id} />
            )}
          </div>
        </>
      )}
    </section>
  );
}
