import { useState, type FormEvent } from 'react';
import { CREATE_ENDPOINT_MUTATION } from '../api/documents';
import { WEBHOOK_EVENTS, type EndpointWithSecret, type WebhookEvent } from '../api/types';
import { useSession } from '../auth/session';
import { humanStatus } from '../lib/format';
import { describeError } from './errors';

function splitTypes(text: string): string[] | null {
  const types = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return types.length ? types : null;
}

/** A new endpoint: URL, events, optional task types and description. */
export function CreateEndpointForm({ onCreated }: { onCreated: (created: EndpointWithSecret) => void }) {
  const { request } = useSession();
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<WebhookEvent[]>(['TASK_FINISHED']);
  const [types, setTypes] = useState('');
  const [description, setDescription] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const toggle = (event: WebhookEvent, on: boolean) =>
    setEvents((list) => (on ? [...list, event] : list.filter((e) => e !== event)));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const input = { url: url.trim(), events, types: splitTypes(types), description: description.trim() || null };
      const data = await request<{ createWebhookEndpoint: EndpointWithSecret }>(CREATE_ENDPOINT_MUTATION, { input });
      onCreated(data.createWebhookEndpoint);
      setUrl('');
      setDescription('');
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card endpoint-form" onSubmit={submit} aria-labelledby="new-endpoint-title">
      <h2 id="new-endpoint-title">New endpoint</h2>
      <div className="endpoint-form-fields">
        <label className="field field-grow">
          <span>URL</span>
          <input type="url" required placeholder="https://example.com/hooks/bulkwatch" value={url} onChange={(e) => setUrl(e.target.value)} />
        </label>
        <label className="field">
          <span>Task types (comma separated, empty for all)</span>
          <input value={types} placeholder="e.g. sims.bulk_provision" onChange={(e) => setTypes(e.target.value)} />
        </label>
        <label className="field">
          <span>Description</span>
          <input value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
      </div>
      <fieldset className="event-choices">
        <legend>Events</legend>
        {WEBHOOK_EVENTS.map((ev) => (
          <label key={ev} className="check">
            <input type="checkbox" checked={events.includes(ev)} onChange={(e) => toggle(ev, e.target.checked)} />
            {humanStatus(ev)}
          </label>
        ))}
      </fieldset>
      {error && (
        <p className="alert alert-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="btn btn-primary" disabled={busy || events.length === 0}>
        {busy ? 'Creating…' : 'Create endpoint'}
      </button>
    </form>
  );
}
