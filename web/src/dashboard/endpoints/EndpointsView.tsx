import { useState } from 'react';
import type { EndpointWithSecret } from '../api/types';
import { CreateEndpointForm } from './CreateEndpointForm';
import { EndpointCard } from './EndpointCard';
import { SecretNotice } from './SecretNotice';
import { useEndpoints } from './useEndpoints';

/** Webhook endpoints: one request for the list; each delivery log is read when opened. */
export function EndpointsView() {
  const list = useEndpoints();
  const [secret, setSecret] = useState<EndpointWithSecret | null>(null);

  const onSecret = (created: EndpointWithSecret) => {
    list.put(created.endpoint);
    setSecret(created);
  };

  return (
    <section className="endpoints-view" aria-labelledby="endpoints-title">
      <h1 id="endpoints-title">Webhook endpoints</h1>
      {list.forbidden ? (
        <p className="alert alert-warn" role="alert">
          {list.error}
        </p>
      ) : list.error ? (
        <p className="alert alert-error" role="alert">
          Could not read the endpoints: {list.error}{' '}
          <button type="button" className="btn btn-small" onClick={list.reload}>
            Try again
          </button>
        </p>
      ) : !list.endpoints ? (
        <p className="muted loading-text">Loading the endpoints…</p>
      ) : (
        <>
          {secret && <SecretNotice url={secret.endpoint.url} secret={secret.secret} onDismiss={() => setSecret(null)} />}
          <CreateEndpointForm onCreated={onSecret} />
          {list.endpoints.length === 0 ? (
            <p className="empty">No endpoints yet: add one above to be told when tasks change.</p>
          ) : (
            <ul className="endpoint-list" aria-label="Endpoints">
              {list.endpoints.map((e) => (
                <EndpointCard key={e.id} endpoint={e} onChanged={list.put} onDeleted={list.remove} onSecret={onSecret} />
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
