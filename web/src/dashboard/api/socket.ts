import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws/client';
import { bearer } from '../../shared/apiKey';
import { graphqlWsUrl } from '../../shared/endpoints';
import type { Variables } from './http';

export interface SocketEvents {
  /** The server refused the key (close 4403): no retry makes sense. */
  onForbidden: () => void;
  /** A connection came back after a drop: views re-read their state. */
  onReconnected: () => void;
  /** The socket dropped and a retry is pending, or it is up again. */
  onStateChange: (state: 'connecting' | 'open' | 'retrying' | 'idle') => void;
}

const FORBIDDEN = 4403;

function closeCode(value: unknown): number | undefined {
  if (typeof value === 'object' && value !== null && 'code' in value) {
    const code = (value as { code: unknown }).code;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

/** One socket per signed-in session, shared by every subscription of the page. */
export function openSocket(key: string, events: SocketEvents): Client {
  return createClient({
    url: graphqlWsUrl(),
    connectionParams: { Authorization: bearer(key) },
    lazy: true,
    // Keep the socket a moment after the last unsubscribe, so a route change
    // (list -> detail) reuses it instead of reconnecting.
    lazyCloseTimeout: 3000,
    keepAlive: 20_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    // Exponential backoff with jitter, capped at 30 s.
    retryWait: async (retries) => {
      const base = Math.min(30_000, 500 * 2 ** retries);
      await new Promise((resolve) => setTimeout(resolve, base / 2 + Math.random() * (base / 2)));
    },
    shouldRetry: (event) => closeCode(event) !== FORBIDDEN,
    on: {
      connecting: () => events.onStateChange('connecting'),
      connected: (_socket, _payload, wasRetry) => {
        events.onStateChange('open');
        if (wasRetry) events.onReconnected();
      },
      closed: (event) => {
        const code = closeCode(event);
        if (code === FORBIDDEN) events.onForbidden();
        // 1000 is the lazy close after the last subscription ended.
        else events.onStateChange(code === 1000 ? 'idle' : 'retrying');
      },
    },
  });
}

export interface SubscriptionHandlers<T> {
  next: (data: T) => void;
  /** A GraphQL error inside the stream, with its `extensions.code`. */
  error: (message: string, code: string | undefined) => void;
  complete?: () => void;
}

/**
 * Subscribes and returns the function that ends the subscription; after it
 * is called no handler runs (graphql-ws would still report a completion).
 */
export function subscribe<T>(
  client: Client,
  query: string,
  variables: Variables,
  handlers: SubscriptionHandlers<T>,
): () => void {
  let ended = false;
  const guarded: SubscriptionHandlers<T> = {
    next: (data) => !ended && handlers.next(data),
    error: (message, code) => !ended && handlers.error(message, code),
    complete: () => !ended && handlers.complete?.(),
  };
  const stop = subscribeRaw(client, query, variables, guarded);
  return () => {
    ended = true;
    stop();
  };
}

function subscribeRaw<T>(
  client: Client,
  query: string,
  variables: Variables,
  handlers: SubscriptionHandlers<T>,
): () => void {
  return client.subscribe<T>(
    { query, variables },
    {
      next: (result: FormattedExecutionResult<T>) => {
        const first = result.errors?.[0];
        if (first) {
          const code = first.extensions?.code;
          handlers.error(first.message, typeof code === 'string' ? code : undefined);
        } else if (result.data) {
          handlers.next(result.data);
        }
      },
      error: (err: unknown) => {
        if (closeCode(err) === FORBIDDEN) {
          handlers.error('The server refused the API key.', 'UNAUTHENTICATED');
        } else if (Array.isArray(err)) {
          // graphql-ws delivers an `error` message as a list of GraphQL errors.
          const first = err[0] as { message?: string; extensions?: { code?: string } } | undefined;
          handlers.error(first?.message ?? 'Subscription error', first?.extensions?.code);
        } else {
          handlers.error(err instanceof Error ? err.message : 'The live connection failed.', 'NETWORK');
        }
      },
      complete: () => handlers.complete?.(),
    },
  );
}
