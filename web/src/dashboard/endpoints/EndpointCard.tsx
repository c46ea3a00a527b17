import { useState } from 'react';
import { DELETE_ENDPOINT_MUTATION, ROTATE_SECRET_MUTATION, TEST_WEBHOOK_MUTATION, UPDATE_ENDPOINT_MUTATION } from '../api/documents';
import type { EndpointWithSecret, WebhookDelivery, WebhookEndpoint } from '../api/types';
import { useSession } from '../auth/session';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { formatDateTime, humanStatus } from '../lib/format';
import { DeliveryLog } from './DeliveryLog';
import { describeError } from './errors';
import { useDeliveries } from './useDeliveries';

interface Props {
  endpoint: WebhookEndpoint;
  onChanged: (endpoint: WebhookEndpoint) => void;
  onDeleted: (id: string) => void;
  onSecret: (created: EndpointWithSecret) => void;
}

type Confirm = 'rotate' | 'delete' | null;

function EndpointDeliveries({ endpoint }: { endpoint: WebhookEndpoint }) {
  const log = useDeliveries(endpoint.id);
  return <DeliveryLog log={log} endpointUrl={endpoint.url} />;
}

/** One endpoint: what it receives, its switches, and its delivery log on demand. */
export function EndpointCard({ endpoint, onChanged, onDeleted, onSecret }: Props) {
  const { request } = useSession();
  const [open, setOpen] = useState(false);
  const [logKey, setLogKey] = useState(0);
  const [confirm, setConfirm] = useState<Confirm>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const e = endpoint;
  const logId = `deliveries-${e.id}`;

  const act = async (work: () => Promise<string>) => {
    try {
      setMessage({ ok: true, text: await work() });
    } catch (err) {
      setMessage({ ok: false, text: describeError(err) });
    }
  };

  const toggleEnabled = () =>
    act(async () => {
      const input = { id: e.id, enabled: !e.enabled };
      const data = await request<{ updateWebhookEndpoint: WebhookEndpoint }>(UPDATE_ENDPOINT_MUTATION, { input });
      onChanged(data.updateWebhookEndpoint);
      return data.updateWebhookEndpoint.enabled ? 'Enabled.' : 'Disabled: no more deliveries are sent.';
    });

  const sendTest = () =>
    act(async () => {
      await request<{ sendTestWebhook: WebhookDelivery }>(TEST_WEBHOOK_MUTATION, { id: e.id });
      setOpen(true);
      setLogKey((n) => n + 1);
      return 'Test message queued.';
    });

  const runConfirmed = async () => {
    if (confirm === 'rotate') {
      const data = await request<{ rotateWebhookSecret: EndpointWithSecret }>(ROTATE_SECRET_MUTATION, { id: e.id });
      onSecret(data.rotateWebhookSecret);
      setMessage({ ok: true, text: 'New secret made; the old one signs beside it for 24 hours.' });
    } else if (confirm === 'delete') {
      await request<{ deleteWebhookEndpoint: boolean }>(DELETE_ENDPOINT_MUTATION, { id: e.id });
      onDeleted(e.id);
    }
  };

  return (
    <li className="card endpoint" data-endpoint-id={e.id}>
      <div className="endpoint-head">
        <div className="endpoint-main">
          <h2 className="endpoint-url">{e.url}</h2>
          {e.description && <p className="muted">{e.description}</p>}
          <p className="small endpoint-meta">
            {e.events.map((ev) => humanStatus(ev)).join(', ')} · {e.types ? `types ${e.types.join(', ')}` : 'every type'} · created{' '}
            {formatDateTime(e.createdAt)}
          </p>
        </div>
        <span className={`badge ${e.enabled ? 'badge-completed' : 'badge-failed'}`}>{e.enabled ? 'Enabled' : 'Disabled'}</span>
      </div>
      {!e.enabled && e.disabledReason && <p className="alert alert-warn">Disabled: {e.disabledReason}</p>}
      <div className="actions" role="toolbar" aria-label={`Actions for ${e.url}`}>
        <button type="button" className="btn" aria-expanded={open} aria-controls={logId} onClick={() => setOpen((x) => !x)}>
          {open ? 'Hide deliveries' : 'Deliveries'}
        </button>
        <button type="button" className="btn" onClick={() => void sendTest()} disabled={!e.enabled}>
          Send test
        </button>
        <button type="button" className="btn" onClick={() => void toggleEnabled()}>
          {e.enabled ? 'Disable' : 'Enable'}
        </button>
        <button type="button" className="btn" onClick={() => setConfirm('rotate')}>
          Rotate secret
        </button>
        <button type="button" className="btn btn-danger-ghost" onClick={() => setConfirm('delete')}>
          Delete
        </button>
      </div>
      {message && (
        <p className={`small ${message.ok ? 'ok-text' : 'error-text'}`} role="status">
          {message.text}
        </p>
      )}
      <div id={logId}>{open && <EndpointDeliveries key={logKey} endpoint={e} />}</div>
      <ConfirmDialog
        open={confirm != null}
        title={confirm === 'delete' ? 'Delete this endpoint?' : 'Rotate the signing secret?'}
        confirmLabel={confirm === 'delete' ? 'Delete' : 'Rotate'}
        danger={confirm === 'delete'}
        onClose={() => setConfirm(null)}
        onConfirm={runConfirmed}
      >
        <p>
          {confirm === 'delete'
            ? `${e.url} and its delivery log are deleted for good.`
            : 'A new secret is shown once; the old one keeps signing beside it for 24 hours.'}
        </p>
      </ConfirmDialog>
    </li>
  );
}
