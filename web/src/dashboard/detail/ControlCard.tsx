import type { FailurePolicy, TaskDetail } from '../api/types';
import { formatDateTime } from '../lib/format';
import { PriorityControl } from './PriorityControl';

interface Props {
  task: TaskDetail;
  onTask: (task: TaskDetail) => void;
}

function policyText(policy: FailurePolicy | null): string {
  if (!policy) return 'none: the task runs to the end';
  const parts: string[] = [];
  if (policy.maxFailedItems != null) parts.push(`fail at ${policy.maxFailedItems} failed items`);
  if (policy.maxFailureRatio != null) {
    parts.push(`fail above ${Math.round(policy.maxFailureRatio * 1000) / 10}% failed (after ${policy.minFinished} final)`);
  }
  if (policy.nonRetryableCodes.length) parts.push(`never retry ${policy.nonRetryableCodes.join(', ')}`);
  return parts.length ? parts.join('; ') : 'none';
}

/** How the task is scheduled and when it gives up: priority, start, deadline, failure policy. */
export function ControlCard({ task, onTask }: Props) {
  return (
    <section className="card" aria-labelledby="control-title">
      <h2 id="control-title">Control</h2>
      <PriorityControl task={task} onTask={onTask} />
      <dl className="facts facts-compact">
        <div>
          <dt>Claims</dt>
          <dd>{task.paused ? 'paused' : 'open'}</dd>
        </div>
        <div>
          <dt>Not before</dt>
          <dd>{formatDateTime(task.notBefore)}</dd>
        </div>
        <div>
          <dt>Deadline</dt>
          <dd>{formatDateTime(task.deadline)}</dd>
        </div>
        <div className="fact-wide">
          <dt>Failure policy</dt>
          <dd>{policyText(task.failurePolicy)}</dd>
        </div>
      </dl>
    </section>
  );
}
