import { useEffect, useState, type FormEvent } from 'react';
import { PRIORITY_MUTATION } from '../api/documents';
import type { TaskDetail } from '../api/types';
import { useSession } from '../auth/session';

const MIN = -100;
const MAX = 100;

interface Props {
  task: TaskDetail;
  onTask: (task: TaskDetail) => void;
}

/** The task's claim priority, -100 to 100, set with `setTaskPriority`. */
export function PriorityControl({ task, onTask }: Props) {
  const { request } = useSession();
  const [draft, setDraft] = useState(String(task.priority));
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => setDraft(String(task.priority)), [task.priority]);

  const value = Number(draft);
  const valid = draft.trim() !== '' && Number.isInteger(value) && value >= MIN && value <= MAX;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!valid) return;
    setBusy(true);
    try {
      const { setTaskPriority: next } = await request<{ setTaskPriority: TaskDetail }>(PRIORITY_MUTATION, {
        id: task.id,
        priority: value,
      });
      onTask(next);
      setMessage({ ok: true, text: `Priority set to ${next.priority}.` });
    } catch (err) {
      setMessage({ ok: false, text: err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="priority" onSubmit={submit} aria-label="Set the priority">
      <label className="field">
        <span>Priority ({MIN} to {MAX})</span>
        <input
          type="number"
          min={MIN}
          max={MAX}
          step={1}
          required
          value={draft}
          aria-invalid={!valid}
          onChange={(e) => setDraft(e.target.value)}
        />
      </label>
      <button type="submit" className="btn" disabled={busy || !valid || value === task.priority}>
        {busy ? 'Setting…' : 'Set priority'}
      </button>
      {message && (
        <p className={`small ${message.ok ? 'ok-text' : 'error-text'}`} role="status">
          {message.text}
        </p>
      )}
    </form>
  );
}
