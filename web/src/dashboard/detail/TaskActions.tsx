import { useState } from 'react';
import {
  CANCEL_MUTATION,
  DELETE_MUTATION,
  FAIL_MUTATION,
  PAUSE_MUTATION,
  RESUME_MUTATION,
  RETRY_MUTATION,
} from '../api/documents';
import { TERMINAL_STATUSES, type TaskDetail } from '../api/types';
import { useSession } from '../auth/session';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { formatCount } from '../lib/format';
import { setFlash } from '../lib/flash';

export type Action =
  | { kind: 'cancel' }
  | { kind: 'retry'; code: string | null }
  | { kind: 'fail' }
  | { kind: 'delete' }
  | { kind: 'pause' }
  | { kind: 'resume' };

interface Props {
  task: TaskDetail;
  /** An action asked for elsewhere on the page (a code's Retry button). */
  pending: Action | null;
  onPending: (action: Action | null) => void;
  onTask: (task: TaskDetail) => void;
}

const plural = (n: number, word: string) => `${formatCount(n)} ${word}${n === 1 ? '' : 's'}`;

/** The task's buttons; each asks for confirmation and reports what it did. */
export function TaskActions({ task, pending, onPending, onTask }: Props) {
  const { request } = useSession();
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [failCode, setFailCode] = useState('ABORTED_BY_OPERATOR');
  const [failMessage, setFailMessage] = useState('');
  const [reasonText, setReasonText] = useState('');
  const terminal = TERMINAL_STATUSES.has(task.status);
  const c = task.counters;

  const open = (action: Action) => onPending(action);

  const run = async (action: Action) => {
    const reason = reasonText.trim() || null;
    if (action.kind === 'cancel') {
      const { cancelBulkTask: next } = await request<{ cancelBulkTask: TaskDetail }>(CANCEL_MUTATION, { id: task.id, reason });
      onTask(next);
      setResult({ ok: true, text: `Cancel requested: ${plural(next.counters.cancelled - c.cancelled, 'pending item')} cancelled.` });
    } else if (action.kind === 'pause') {
      const { pauseBulkTask: next } = await request<{ pauseBulkTask: TaskDetail }>(PAUSE_MUTATION, { id: task.id, reason });
      onTask(next);
      setResult({ ok: true, text: 'Paused: workers get no more of its items until it is resumed.' });
    } else if (action.kind === 'resume') {
      const { resumeBulkTask: next } = await request<{ resumeBulkTask: TaskDetail }>(RESUME_MUTATION, { id: task.id, reason });
      onTask(next);
      setResult({ ok: true, text: 'Resumed: workers may claim its items again.' });
    } else if (action.kind === 'retry') {
      const input = { taskId: task.id, reason, ...(action.code ? { errorCodes: [action.code] } : {}) };
      const { retryFailedItems: next } = await request<{ retryFailedItems: TaskDetail }>(RETRY_MUTATION, { input });
      onTask(next);
      const moved = c.failed - next.counters.failed;
      setResult({ ok: true, text: `${plural(moved, 'failed item')}${action.code ? ` (${action.code})` : ''} sent back to pending.` });
    } else if (action.kind === 'fail') {
      const input = { id: task.id, code: failCode.trim(), message: failMessage.trim() };
      const { failBulkTask: next } = await request<{ failBulkTask: TaskDetail }>(FAIL_MUTATION, { input });
      onTask(next);
      setResult({ ok: true, text: `Task failed with ${input.code}.` });
    } else {
      await request<{ deleteBulkTask: string }>(DELETE_MUTATION, { id: task.id, reason });
      setFlash(`Deleted the task “${task.description || task.type}”.`);
      window.location.hash = '#/';
    }
  };

  const dialog = pending && describe(pending, task);
  return (
    <div className="actions-wrap">
      <div className="actions" role="toolbar" aria-label="Task actions">
        {task.paused ? (
          <button type="button" className="btn" disabled={terminal} onClick={() => open({ kind: 'resume' })}>
            Resume
          </button>
        ) : (
          <button type="button" className="btn" disabled={terminal || task.cancelRequested} onClick={() => open({ kind: 'pause' })}>
            Pause
          </button>
        )}
        <button type="button" className="btn" disabled={terminal || task.cancelRequested} onClick={() => open({ kind: 'cancel' })}>
          Cancel task
        </button>
        <button type="button" className="btn" disabled={c.failed === 0} onClick={() => open({ kind: 'retry', code: null })}>
          Retry failed{c.failed ? ` (${formatCount(c.failed)})` : ''}
        </button>
        <button type="button" className="btn" disabled={terminal} onClick={() => open({ kind: 'fail' })}>
          Fail task…
        </button>
        <button type="button" className="btn btn-danger-ghost" onClick={() => open({ kind: 'delete' })}>
          Delete
        </button>
      </div>
      {result && (
        <p className={`alert ${result.ok ? 'alert-ok' : 'alert-error'}`} role="status">
          {result.text}
        </p>
      )}
      <ConfirmDialog
        open={dialog != null}
        title={dialog?.title ?? ''}
        confirmLabel={dialog?.confirm ?? 'OK'}
        danger={dialog?.danger}
        onClose={() => {
          setReasonText('');
          onPending(null);
        }}
        onConfirm={async () => {
          if (!pending) return;
          try {
            await run(pending);
          } catch (err) {
            setResult({ ok: false, text: err instanceof Error ? err.message : String(err) });
            throw err;
          }
        }}
      >
        <p>{dialog?.body}</p>
        {pending && pending.kind !== 'fail' && (
          <div className="dialog-fields">
            <label className="field">
              <span>Reason (optional)</span>
              <input value={reasonText} placeholder="Kept in the audit trail" onChange={(e) => setReasonText(e.target.value)} />
            </label>
          </div>
        )}
        {pending?.kind === 'fail' && (
          <div className="dialog-fields">
            <label className="field">
              <span>Code</span>
              <input required value={failCode} onChange={(e) => setFailCode(e.target.value)} />
            </label>
            <label className="field">
              <span>Reason</span>
              <input required value={failMessage} placeholder="Why the task is aborted" onChange={(e) => setFailMessage(e.target.value)} />
            </label>
          </div>
        )}
      </ConfirmDialog>
    </div>
  );
}

function describe(action: Action, task: TaskDetail): { title: string; body: string; confirm: string; danger: boolean } {
  const c = task.counters;
  switch (action.kind) {
    case 'cancel':
      return {
        title: 'Cancel this task?',
        body: `${plural(c.pending, 'pending item')} will be cancelled; ${plural(c.running, 'running item')} may still finish.`,
        confirm: 'Cancel task',
        danger: true,
      };
    case 'retry':
      return {
        title: action.code ? `Retry items failed with ${action.code}?` : 'Retry all failed items?',
        body: action.code
          ? `Failed items with the error code ${action.code} go back to pending with a fresh round of attempts.`
          : `${plural(c.failed, 'failed item')} go back to pending with a fresh round of attempts.`,
        confirm: 'Retry',
        danger: false,
      };
    case 'fail':
      return {
        title: 'Fail this task?',
        body: `The task is aborted with a task-level error; ${plural(c.pending, 'pending item')} will be cancelled.`,
        confirm: 'Fail task',
        danger: true,
      };
    case 'pause':
      return {
        title: 'Pause this task?',
        body: `Workers get none of its ${plural(c.pending, 'pending item')} until it is resumed; ${plural(c.running, 'running item')} may still finish.`,
        confirm: 'Pause',
        danger: false,
      };
    case 'resume':
      return {
        title: 'Resume this task?',
        body: `Workers may claim its ${plural(c.pending, 'pending item')} again.`,
        confirm: 'Resume',
        danger: false,
      };
    case 'delete':
      return {
        title: 'Delete this task?',
        body: `The task and its ${plural(c.total, 'item')} are deleted for good.`,
        confirm: 'Delete',
        danger: true,
      };
  }
}
