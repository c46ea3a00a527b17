import { useCallback, useEffect, useRef, useState } from 'react';
import { DETAIL_QUERY, FAILURES_SUBSCRIPTION, ITEMS_QUERY, TASK_SUBSCRIPTION } from '../api/documents';
import { subscribe } from '../api/socket';
import { TERMINAL_STATUSES, type Connection, type Item, type ItemStatus, type TaskDetail } from '../api/types';
import { useSession } from '../auth/session';
import { recordSnapshot } from '../lib/rates';

export const ITEMS_PAGE_SIZE = 25;
const FEED_LENGTH = 50;

export interface ItemsParams {
  status: ItemStatus | null;
  after: string | null;
  before: string | null;
  page: number;
}

const FIRST_ITEMS: ItemsParams = { status: null, after: null, before: null, page: 0 };

function itemVariables(p: ItemsParams): Record<string, unknown> {
  const paging = p.before
    ? { itemsLast: ITEMS_PAGE_SIZE, itemsBefore: p.before }
    : { itemsFirst: ITEMS_PAGE_SIZE, itemsAfter: p.after };
  return { ...paging, itemsFilter: p.status ? { status: [p.status] } : null };
}

type WithItems = TaskDetail & { items: Connection<Item> };

export interface TaskDetailState {
  task: TaskDetail | null;
  items: Connection<Item> | null;
  /** The task version the items page was read at; older than the task means stale. */
  itemsVersion: number;
  itemsParams: ItemsParams;
  setItemsParams: (p: ItemsParams) => void;
  itemsLoading: boolean;
  feed: Item[];
  /** False once the task reached a terminal state and its stream ended. */
  live: boolean;
  error: string | null;
  notFound: boolean;
  notice: string | null;
  reload: () => void;
  reloadItems: () => void;
  /** Takes a mutation's answer, and follows the task again if it was revived. */
  applyTask: (task: TaskDetail) => void;
}

/** One query (task, failure summary, first items), then two subscriptions. */
export function useTaskDetail(id: string): TaskDetailState {
  const { request, socket, reconnects, signOut } = useSession();
  const [task, setTaskValue] = useState<TaskDetail | null>(null);
  const taskRef = useRef<TaskDetail | null>(null);
  const [items, setItems] = useState<Connection<Item> | null>(null);
  const [itemsVersion, setItemsVersion] = useState(0);
  const [itemsParams, setItemsParams] = useState<ItemsParams>(FIRST_ITEMS);
  const itemsParamsRef = useRef(itemsParams);
  itemsParamsRef.current = itemsParams;
  const [itemsLoading, setItemsLoading] = useState(false);
  const [feed, setFeed] = useState<Item[]>([]);
  const [live, setLive] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notFound, setNotFound] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);
  const [itemReloads, setItemReloads] = useState(0);
  const [generation, setGeneration] = useState(0);
  const reload = useCallback(() => setReloads((n) => n + 1), []);
  const reloadItems = useCallback(() => setItemReloads((n) => n + 1), []);

  /** Keeps the newest snapshot: `version` never goes back. */
  const setTask = useCallback((next: TaskDetail) => {
    const current = taskRef.current;
    if (current && current.id === next.id && next.version < current.version) return;
    recordSnapshot(next);
    taskRef.current = next;
    setTaskValue(next);
  }, []);

  useEffect(() => {
    let active = true;
    request<{ bulkTask: WithItems | null }>(DETAIL_QUERY, { id, ...itemVariables(itemsParamsRef.current) })
      .then(({ bulkTask }) => {
        if (!active) return;
        if (!bulkTask) return setNotFound(true);
        const { items: page, ...rest } = bulkTask;
        setTask(rest);
        setItems(page);
        setItemsVersion(rest.version);
        setError(null);
        return undefined;
      })
      .catch((err: unknown) => active && setError(err instanceof Error ? err.message : String(err)));
    return () => {
      active = false;
    };
  }, [request, id, reconnects, reloads, setTask]);

  // Later item pages and filters, and explicit refreshes, read items only.
  const itemsKey = `${JSON.stringify(itemsParams)}#${itemReloads}`;
  const firstItemsKey = useRef(itemsKey);
  useEffect(() => {
    if (itemsKey === firstItemsKey.current) return undefined;
    let active = true;
    setItemsLoading(true);
    request<{ bulkTask: { items: Connection<Item> } | null }>(ITEMS_QUERY, { id, ...itemVariables(itemsParamsRef.current) })
      .then(({ bulkTask }) => {
        if (!active || !bulkTask) return;
        setItems(bulkTask.items);
        setItemsVersion(taskRef.current?.version ?? 0);
      })
      .catch((err: unknown) => active && setNotice(err instanceof Error ? err.message : String(err)))
      .finally(() => active && setItemsLoading(false));
    return () => {
      active = false;
    };
  }, [request, id, itemsKey]);

  const onStreamError = useCallback(
    (message: string, code: string | undefined) => {
      if (code === 'UNAUTHENTICATED') return signOut('The server did not accept this API key.');
      if (code === 'NOT_FOUND') return setNotFound(true);
      if (code === 'SUBSCRIBER_LAGGED') {
        // Missed changes: read the task afresh and follow it again.
        setReloads((n) => n + 1);
        setGeneration((n) => n + 1);
        return undefined;
      }
      setNotice(`Live updates paused: ${message}`);
      return undefined;
    },
    [signOut],
  );

  useEffect(() => {
    setLive(true);
    return subscribe<{ bulkTaskUpdated: TaskDetail }>(
      socket,
      TASK_SUBSCRIPTION,
      { id },
      {
        next: ({ bulkTaskUpdated }) => setTask(bulkTaskUpdated),
        error: onStreamError,
        // The stream ends after the terminal state.
        complete: () => setLive(false),
      },
    );
  }, [socket, id, generation, setTask, onStreamError]);

  useEffect(
    () =>
      subscribe<{ taskItemsUpdated: Item }>(
        socket,
        FAILURES_SUBSCRIPTION,
        { taskId: id },
        {
          next: ({ taskItemsUpdated: item }) =>
            setFeed((f) => [item, ...f.filter((x) => x.id !== item.id)].slice(0, FEED_LENGTH)),
          error: onStreamError,
        },
      ),
    [socket, id, generation, onStreamError],
  );

  const applyTask = useCallback(
    (next: TaskDetail) => {
      setTask(next);
      if (!live && !TERMINAL_STATUSES.has(next.status)) setGeneration((n) => n + 1);
    },
    [live, setTask],
  );

  return {
    task,
    items,
    itemsVersion,
    itemsParams,
    setItemsParams,
    itemsLoading,
    feed,
    live,
    error,
    notFound,
    notice,
    reload,
    reloadItems,
    applyTask,
  };
}
