import { useCallback, useEffect, useState } from 'react';
import { AUDIT_QUERY } from '../api/documents';
import type { AuditEntry } from '../api/types';
import { useSession } from '../auth/session';

export const AUDIT_PAGE_SIZE = 20;

interface AuditPage {
  bulkTask: {
    auditTrail: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: AuditEntry[] };
  } | null;
}

export interface AuditTrail {
  entries: AuditEntry[];
  hasMore: boolean;
  loading: boolean;
  error: string | null;
  loadMore: () => void;
  refresh: () => void;
}

/** The task's audit trail, newest first: one request when the tab opens, one per further page. */
export function useAuditTrail(id: string): AuditTrail {
  const { request } = useSession();
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  // `after` null reads the first page afresh; a cursor appends the next one.
  const [want, setWant] = useState<{ after: string | null; n: number }>({ after: null, n: 0 });

  useEffect(() => {
    let active = true;
    setLoading(true);
    request<AuditPage>(AUDIT_QUERY, { id, first: AUDIT_PAGE_SIZE, after: want.after })
      .then(({ bulkTask }) => {
        if (!active) return;
        const page = bulkTask?.auditTrail;
        const nodes = page?.nodes ?? [];
        setEntries((prev) => (want.after ? [...prev, ...nodes] : nodes));
        setCursor(page?.pageInfo.endCursor ?? null);
        setHasMore(page?.pageInfo.hasNextPage ?? false);
        setError(null);
      })
      .catch((err: unknown) => active && setError(err instanceof Error ? err.message : String(err)))
      .finally(() => active && setLoading(false));
    return () => {
      active = false;
    };
  }, [request, id, want]);

  const loadMore = useCallback(() => setWant((w) => ({ after: cursor, n: w.n + 1 })), [cursor]);
  const refresh = useCallback(() => setWant((w) => ({ after: null, n: w.n + 1 })), []);
  return { entries, hasMore, loading, error, loadMore, refresh };
}
