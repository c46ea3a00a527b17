import type { AuditEntry } from '../api/types';
import { formatDateTime } from '../lib/format';
import { useAuditTrail } from './useAuditTrail';

function detailsText(details: unknown): string | null {
  if (details == null) return null;
  if (typeof details === 'object' && Object.keys(details).length === 0) return null;
  return JSON.stringify(details);
}

function AuditRow({ entry }: { entry: AuditEntry }) {
  const details = detailsText(entry.details);
  return (
    <tr>
      <td className="nowrap">{formatDateTime(entry.at)}</td>
      <td>
        <code>{entry.action}</code>
      </td>
      <td className="audit-actor">{entry.actor}</td>
      <td>{entry.reason ?? <span className="muted">—</span>}</td>
      <td>{details ? <code className="audit-details">{details}</code> : <span className="muted">—</span>}</td>
    </tr>
  );
}

/** Who changed the task, how and why, newest first, a page at a time. */
export function AuditTab({ taskId }: { taskId: string }) {
  const audit = useAuditTrail(taskId);
  return (
    <section className="card" aria-labelledby="audit-title">
      <div className="card-head">
        <h2 id="audit-title">Audit trail</h2>
        <button type="button" className="btn btn-small" onClick={audit.refresh} disabled={audit.loading}>
          Refresh
        </button>
      </div>
      {audit.error && (
        <p className="alert alert-error" role="alert">
          Could not read the audit trail: {audit.error}
        </p>
      )}
      {audit.entries.length === 0 && !audit.loading && !audit.error ? (
        <p className="muted">Nothing recorded yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="items audit">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">By</th>
                <th scope="col">Reason</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {audit.entries.map((entry, i) => (
                <AuditRow key={`${entry.at}-${entry.action}-${i}`} entry={entry} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {audit.loading && <p className="muted small">Loading…</p>}
      {audit.hasMore && !audit.loading && (
        <button type="button" className="btn btn-small" onClick={audit.loadMore}>
          Older entries
        </button>
      )}
    </section>
  );
}
