import { memo } from 'react';
import type { Task } from '../api/types';
import { ProgressBar } from '../components/ProgressBar';
import { RateText } from '../components/RateText';
import { StatusBadge } from '../components/StatusBadge';
import { formatAgo, formatCount, formatDateTime, formatIn, percent } from '../lib/format';
import { taskHref } from '../route';

export function taskLabel(task: Pick<Task, 'type' | 'description'>): string {
  return task.description ? `${task.type}: ${task.description}` : task.type;
}

interface Props {
  task: Task;
  now: number;
}

export const TaskRow = memo(function TaskRow({ task, now }: Props) {
  const c = task.counters;
  return (
    <li className="task-row" data-task-id={task.id}>
      <div className="task-main">
        <a className="task-title" href={taskHref(task.id)}>
          {task.description || task.type}
        </a>
        <div className="task-meta">
          <code className="task-type">{task.type}</code>
          <span className="muted">updated {formatAgo(task.updatedAt, now)}</span>
          {task.expiresAt && (
            <span className="muted expires-hint" title={`Deleted with its items at ${formatDateTime(task.expiresAt)}`}>
              expires {formatIn(task.expiresAt, now)}
            </span>
          )}
        </div>
      </div>
      <div className="task-status">
        <StatusBadge status={task.status} />
      </div>
      <div className="task-progress">
        <ProgressBar counters={c} progress={task.progress} label={taskLabel(task)} />
        <div className="task-figures">
          <span className="pct">{percent(task.progress)}%</span>
          <span className="muted">
            {formatCount(c.finished)} / {formatCount(c.total)}
          </span>
          {c.failed + c.rejected > 0 && <span className="fail-count">{formatCount(c.failed + c.rejected)} failed</span>}
          <RateText task={task} now={now} />
        </div>
      </div>
    </li>
  );
});
