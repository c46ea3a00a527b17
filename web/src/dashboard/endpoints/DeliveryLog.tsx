import { useState } from 'react';
import { REDELIVER_MUTATION } from '../api/documents';
import { DELIVERY_STATUSES, type DeliveryStatus, type WebhookDelivery } from '../api/types';
import { useSession } from '../auth/session';
import { formatDateTime, humanStatus } from '../lib/format';
import { taskHref } from '../route';
import type { Deliveries } from './useDeliveries';
import { describeError } from './errors';

function DeliveryRow({ delivery, onRedeliver }: { delivery: WebhookDelivery; onRedeliver: () => void }) {
  const d = delivery;
  return (
    <tr data-delivery-id={d.id}>
      <td className="nowrap">{formatDateTime(d.createdAt)}</td>
      <td>
        <code>{d.event}</code>
        {d.task ? (
          <a className="delivery-task" href={taskHref(d.task.id)}>
            {d.task.description || d.task.type}
          </a>
        ) : (
          <span className="muted small delivery-task">test</span>
        )}
      </td>
      <td>
        <span className={`badge badge-delivery-${d.status.toLowerCase()}`}>{humanStatus(d.status)}</span>
      </td>
      <td className="num">{d.attempts}</td>
      <td>
        {d.lastResponseStatus != null ? <code>HTTP {d.lastResponseStatus}</code> : <span className="muted">—</span>}
        {d.lastError && <span className="error-text small delivery-error">{d.lastError}</span>}
      </td>
      <td className="num">{d.lastDurationMs != null ? `${d.lastDurationMs} ms` : '—'}</td>
      <td className="nowrap">
        {d.deliveredAt ? formatDateTime(d.deliveredAt) : d.nextAttemptAt ? `next ${formatDateTime(d.nextAttemptAt)}` : '—'}
      </td>
      <td>
        <button type="button" className="btn btn-small" onClick={onRedeliver} aria-label={`Redeliver ${d.event} of ${formatDateTime(d.createdAt)}`}>
          Redeliver
        </button>
      </td>
    </tr>
  );
}

/** An endpoint's deliveries with a status filter, paging and a Redeliver button per row. */
export function DeliveryLog({ log, endpointUrl }: { log: Deliveries; endpointUrl: string }) {
  const { request } = useSession();
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);

  const redeliver = async (id: string) => {
    try {
      const data = await request<{ redeliverWebhook: WebhookDelivery }>(REDELIVER_MUTATION, { id });
      log.prepend(data.redeliverWebhook);
      setMessage({ ok: true, text: 'Redelivery queued: it is the new row on top.' });
    } catch (err) {
      setMessage({ ok: false, text: describeError(err) });
    }
  };

  return (
    <div className="delivery-log">
      <div className="card-head">
        <h3>Deliveries</h3>
        <label className="field field-inline">
          <span>Status</span>
          <select value={log.status ?? ''} onChange={(e) => log.setStatus((e.target.value || null) as DeliveryStatus | null)}>
            <option value="">All</option>
            {DELIVERY_STATUSES.map((s) => (
              <option key={s} value={s}>
                {humanStatus(s)}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="btn btn-small" onClick={log.refresh} disabled={log.loading}>
          Refresh
        </button>
      </div>
      {message && (
        <p className={`small ${message.ok ? 'ok-text' : 'error-text'}`} role="status">
          {message.text}
        </p>
      )}
      {log.error && (
        <p className="alert alert-error" role="alert">
          {log.error}
        </p>
      )}
      {log.deliveries.length === 0 && !log.loading ? (
        <p className="muted">No deliveries yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="items deliveries" aria-label={`Deliveries to ${endpointUrl}`}>
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Attempts
                </th>
                <th scope="col">Last answer</th>
                <th scope="col" className="num">
                  Took
                </th>
                <th scope="col">Delivered</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {log.deliveries.map((d) => (
                <DeliveryRow key={d.id} delivery={d} onRedeliver={() => void redeliver(d.id)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {log.loading && <p className="muted small">Loading…</p>}
      {log.hasMore && !log.loading && (
        <button type="button" className="btn btn-small" onClick={log.loadMore}>
          Older deliveries
        </button>
      )}
    </div>
  );
}
