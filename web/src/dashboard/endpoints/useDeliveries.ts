import { useCallback, useEffect, useState } from 'react';
import { DELIVERIES_QUERY } from '../api/documents';
import type { DeliveryStatus, WebhookDelivery } from '../api/types';
import { useSession } from '../auth/session';
import { describeError } from './errors';

const PAGE_SIZE = 20;

interface DeliveriesData {
  node: { deliveries: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: WebhookDelivery[] } } | null;
}

export interface Deliveries {
  deliveries: WebhookDelivery[];
  hasMore: boolean;
  loading: boolean;
  error: string | null;
  status: DeliveryStatus | null;
  setStatus: (status: DeliveryStatus | null) => void;
  loadMore: () => void;
  refresh: () => void;
  /** Puts a new delivery (a test, a redelivery) on top. */
  prepend: (delivery: WebhookDelivery) => void;
}

/** An endpoint's delivery log, newest first: one request per page. */
export function useDeliveries(endpointId: string): Deliveries {
  const { request } = useSession();
  const [deliveries, setDeliveries] = useState<WebhookDelivery[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatusValue] = useState<DeliveryStatus | null>(null);
  const [want, setWant] = useState<{ after: string | null; n: number }>({ after: null, n: 0 });

  useEffect(() => {
    let active = true;
    setLoading(true);
    const variables = { id: endpointId, first: PAGE_SIZE, after: want.after, status: status ? [status] : null };
    request<DeliveriesData>(DELIVERIES_QUERY, variables)
      .then(({ node }) => {
        if (!active) return;
        const page = node?.deliveries;
        const nodes = page?.nodes ?? [];
        setDeliveries((prev) => (want.after ? [...prev, ...nodes] : nodes));
        setCursor(page?.pageInfo.endCursor ?? null);
        setHasMore(page?.pageInfo.hasNextPage ?? false);
        setError(null);
      })
      .catch((err: unknown) => active && setError(describeError(err)))
      .finally(() => active && setLoading(false));
    return () => {
      active = false;
    };
  }, [request, endpointId, status, want]);

  const setStatus = useCallback((next: DeliveryStatus | null) => {
    setStatusValue(next);
    setWant((w) => ({ after: null, n: w.n + 1 }));
  }, []);
  const loadMore = useCallback(() => setWant((w) => ({ after: cursor, n: w.n + 1 })), [cursor]);
  const refresh = useCallback(() => setWant((w) => ({ after: null, n: w.n + 1 })), []);
  const prepend = useCallback(
    (delivery: WebhookDelivery) => setDeliveries((list) => [delivery, ...list.filter((d) => d.id !== delivery.id)]),
    [],
  );
  return { deliveries, hasMore, loading, error, status, setStatus, loadMore, refresh, prepend };
}
