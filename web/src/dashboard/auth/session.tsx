import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import type { Client } from 'graphql-ws';
import { ApiError, postGraphQL, type Variables } from '../api/http';
import { openSocket } from '../api/socket';

export type SocketState = 'connecting' | 'open' | 'retrying' | 'idle';

export interface Session {
  apiKey: string;
  /** POSTs an operation; an UNAUTHENTICATED answer signs the user out. */
  request: <T>(query: string, variables?: Variables) => Promise<T>;
  socket: Client;
  socketState: SocketState;
  /** Grows after every reconnect; views re-read their state when it changes. */
  reconnects: number;
  signOut: (reason?: string) => void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}

const BAD_KEY = 'The server did not accept this API key. Check it and sign in again.';

interface Props {
  apiKey: string;
  onSignOut: (reason?: string) => void;
  children: ReactNode;
}

export function SessionProvider({ apiKey, onSignOut, children }: Props) {
  const [socketState, setSocketState] = useState<SocketState>('connecting');
  const [reconnects, setReconnects] = useState(0);

  const socket = useMemo(
    () =>
      openSocket(apiKey, {
        onForbidden: () => onSignOut(BAD_KEY),
        onReconnected: () => setReconnects((n) => n + 1),
        onStateChange: setSocketState,
      }),
    [apiKey, onSignOut],
  );
  // Disposing while the socket is still connecting rejects with that
  // connection's close event (e.g. 4403 for a bad key): nothing to report.
  useEffect(() => () => void Promise.resolve(socket.dispose()).catch(() => undefined), [socket]);

  const request = useCallback(
    async <T,>(query: string, variables?: Variables): Promise<T> => {
      try {
        return await postGraphQL<T>(apiKey, query, variables);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'UNAUTHENTICATED') onSignOut(BAD_KEY);
        throw err;
      }
    },
    [apiKey, onSignOut],
  );

  const value = useMemo<Session>(
    () => ({ apiKey, request, socket, socketState, reconnects, signOut: onSignOut }),
    [apiKey, request, socket, socketState, reconnects, onSignOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
