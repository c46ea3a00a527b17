import { useCallback, useEffect, useState } from 'react';
import { ENDPOINTS_QUERY } from '../api/documents';
import type { WebhookEndpoint } from '../api/types';
import { useSession } from '../auth/session';
import { describeError, isForbidden } from './errors';

const PAGE_SIZE = 100;

interface EndpointsData {
  webhookEndpoints: { nodes: WebhookEndpoint[] };
}

export interface Endpoints {
  endpoints: WebhookEndpoint[] | null;
  /** The key lacks `webhooks:manage`. */
  forbidden: boolean;
  error: string | null;
  reload: () => void;
  /** Puts a created or changed endpoint in the list. */
  put: (endpoint: WebhookEndpoint) => void;
  remove: (id: string) => void;
}

/** The organisation's endpoints, in one request. */
export function useEndpoints(): Endpoints {
  const { request } = useSession();
  const [endpoints, setEndpoints] = useState<WebhookEndpoint[] | null>(null);
  const [forbidden, setForbidden] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    let active = true;
    request<EndpointsData>(ENDPOINTS_QUERY, { first: PAGE_SIZE })
      .then((data) => {
        if (!active) return;
        setEndpoints(data.webhookEndpoints.nodes);
        setForbidden(false);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!active) return;
        setForbidden(isForbidden(err));
        setError(describeError(err));
      });
    return () => {
      active = false;
    };
  }, [request, reloads]);

  const reload = useCallback(() => setReloads((n) => n + 1), []);
  const put = useCallback(
    (endpoint: WebhookEndpoint) =>
      setEndpoints((list) => {
        const current = list ?? [];
        return current.some((e) => e.id === endpoint.id)
          ? current.map((e) => (e.id === endpoint.id ? endpoint : e))
          : [...current, endpoint];
      }),
    [],
  );
  const remove = useCallback((id: string) => setEndpoints((list) => (list ?? []).filter((e) => e.id !== id)), []);
  return { endpoints, forbidden, error, reload, put, remove };
}
