import { useCallback, useEffect, useRef, useState } from 'react';
import { LIST_QUERY, STATS_QUERY, TASKS_SUBSCRIPTION } from '../api/documents';
import { subscribe } from '../api/socket';
import type { Connection, Stats, Task } from '../api/types';
import { useSession } from '../auth/session';
import { recordSnapshot } from '../lib/rates';
import { applySnapshot, initialState, type ListState } from './listState';
import { baseFilter, insertsOnTop, listVariables, type ListParams } from './params';

interface ListData {
  bulkTasks: Connection<Task>;
  bulkTaskStats: Stats;
}

export interface TaskList {
  state: ListState | null;
  loading: boolean;
  error: string | null;
  /** A live-update problem the user should know about; the list still shows. */
  notice: string | null;
  reload: () => void;
}

const STATS_REFRESH_MS = 3000;

/** One query for the page and the chips, one subscription for every change. */
export function useTaskList(params: ListParams): TaskList {
  const { request, socket, reconnects, signOut } = useSession();
  const [state, setStateValue] = useState<ListState | null>(null);
  // Live events fold into the latest state synchronously, so the ref leads.
  const stateRef = useRef<ListState | null>(null);
  const setState = useCallback((next: ListState | null) => {
    stateRef.current = next;
    setStateValue(next);
  }, []);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);
  const [resubscribes, setResubscribes] = useState(0);
  const reload = useCallback(() => setReloads((n) => n + 1), []);

  const variables = listVariables(params);
  const variablesKey = JSON.stringify(variables);
  const statsFilterKey = JSON.stringify(baseFilter(params));
  // The subscription handler reads the current params without resubscribing.
  const paramsRef = useRef(params);
  paramsRef.current = params;

  useEffect(() => {
    let live = true;
    const startedAt = Date.now();
    setLoading(true);
    request<ListData>(LIST_QUERY, JSON.parse(variablesKey) as Record<string, unknown>)
      .then((data) => {
        if (!live) return;
        for (const t of data.bulkTasks.nodes) recordSnapshot(t);
        setState(initialState(data.bulkTasks, data.bulkTaskStats, startedAt));
        setError(null);
      })
      .catch((err: unknown) => live && setError(err instanceof Error ? err.message : String(err)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [request, variablesKey, reconnects, reloads, setState]);

  // Chips of tasks this page never saw: re-read them, at most every few seconds.
  const statsTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const refreshStatsSoon = useCallback(() => {
    if (statsTimer.current) return;
    statsTimer.current = setTimeout(() => {
      statsTimer.current = null;
      request<Pick<ListData, 'bulkTaskStats'>>(STATS_QUERY, { statsFilter: JSON.parse(statsFilterKey) })
        .then((data) => {
          const s = stateRef.current;
          if (s) setState({ ...s, stats: data.bulkTaskStats });
        })
        .catch(() => undefined);
    }, STATS_REFRESH_MS);
  }, [request, statsFilterKey, setState]);
  useEffect(
    () => () => {
      if (statsTimer.current) clearTimeout(statsTimer.current);
      statsTimer.current = null;
    },
    [statsFilterKey],
  );

  useEffect(() => {
    let retry: ReturnType<typeof setTimeout> | undefined;
    const unsubscribe = subscribe<{ bulkTasksUpdated: Task }>(
      socket,
      TASKS_SUBSCRIPTION,
      { filter: JSON.parse(statsFilterKey) },
      {
        next: ({ bulkTasksUpdated: task }) => {
          recordSnapshot(task);
          const p = paramsRef.current;
          const s = stateRef.current;
          if (!s) return;
          const result = applySnapshot(s, task, {
            statusFilter: p.status,
            insertOnTop: insertsOnTop(p),
            pageSize: p.pageSize,
          });
          setState(result.state);
          if (result.statsStale) refreshStatsSoon();
          setNotice(null);
        },
        error: (message, code) => {
          if (code === 'UNAUTHENTICATED') return signOut('The server did not accept this API key.');
          if (code === 'SUBSCRIBER_LAGGED') {
            // Too many changes to follow one by one: read the view afresh.
            reload();
            setResubscribes((n) => n + 1);
            return undefined;
          }
          setNotice(`Live updates paused: ${message}. Retrying…`);
          retry = setTimeout(() => setResubscribes((n) => n + 1), 5000);
          return undefined;
        },
        // The stream has no end of its own: a completion means the server let go.
        complete: () => {
          retry = setTimeout(() => setResubscribes((n) => n + 1), 2000);
        },
      },
    );
    return () => {
      if (retry) clearTimeout(retry);
      unsubscribe();
    };
  }, [socket, statsFilterKey, resubscribes, reload, refreshStatsSoon, signOut, setState]);

  return { state, loading, error, notice, reload };
}
