import type { ItemStatus, TaskStatus } from '../api/types';
import { humanStatus } from '../lib/format';

export function StatusBadge({ status }: { status: TaskStatus | ItemStatus }) {
  return <span className={`badge badge-${status.toLowerCase()}`}>{humanStatus(status)}</span>;
}
