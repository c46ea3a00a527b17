import type { TaskDetail } from '../api/types';
import { ProgressBar, ProgressLegend } from '../components/ProgressBar';
import { RateText } from '../components/RateText';
import { StatusBadge } from '../components/StatusBadge';
import { formatAgo, formatCount, formatDateTime, percent } from '../lib/format';
import { taskLabel } from '../list/TaskRow';

interface Props {
  task: TaskDetail;
  live: boolean;
  now: number;
}

export function TaskHeader({ task, live, now }: Props) {
  const c = task.counters;
  return (
    <section className="card task-header" aria-labelledby="task-title">
      <div className="task-header-top">
        <div>
          <h1 id="task-title">{task.description || task.type}</h1>
          <div className="task-meta">
            <code className="task-type">{task.type}</code>
            <code className="task-id" title="Global id">
              {task.id}
            </code>
          </div>
        </div>
        <div className="task-header-status">
          <StatusBadge status={task.status} />
          <span className={`live-tag${live ? '' : ' is-off'}`}>{live ? 'live' : 'final'}</span>
        </div>
      </div>
      {task.error && (
        <p className="alert alert-error" role="note">
          <strong>{task.error.code}</strong>: {task.error.message}
        </p>
      )}
      <div className="big-progress">
        <span className="big-pct" aria-hidden="true">
          {percent(task.progress)}%
        </span>
        <ProgressBar counters={c} progress={task.progress} label={taskLabel(task)} size="large" />
        <RateText task={task} now={now} />
      </div>
      <ProgressLegend counters={c} />
      <dl className="facts">
        <div>
          <dt>Items</dt>
          <dd>
            {formatCount(c.finished)} / {formatCount(c.total)}
          </dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatDateTime(task.createdAt)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{formatDateTime(task.startedAt)}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{formatDateTime(task.finishedAt)}</dd>
        </div>
        <div>
          <dt>Attempts per item</dt>
          <dd>{task.maxAttempts}</dd>
        </div>
        <div>
          <dt>Sealed</dt>
          <dd>{task.sealed ? 'yes' : 'no, items may still come'}</dd>
        </div>
        <div>
          <dt>Last heartbeat</dt>
          <dd>{task.lastHeartbeatAt ? formatAgo(task.lastHeartbeatAt, now) : 'no worker yet'}</dd>
        </div>
        <div>
          <dt>Expires</dt>
          <dd>{task.expiresAt ? formatDateTime(task.expiresAt) : task.finishedAt ? 'kept' : 'not while it runs'}</dd>
        </div>
      </dl>
    </section>
  );
}
