import type { Fetcher, FetcherOpts, FetcherParams } from '@graphiql/toolkit';
import { parse, type OperationTypeNode } from 'graphql';
import { createClient, type Client, type ExecutionResult } from 'graphql-ws/client';
import { GRAPHQL_PATH, graphqlWsUrl } from '../shared/endpoints';

type Headers = Record<string, string>;

/**
 * The operation GraphiQL is about to run, read from the text it sends now.
 * Right after an edit GraphiQL may still pass the previous operation's name;
 * when the text holds a single operation, that one runs, and its kind (not an
 * earlier parse) decides the transport.
 */
export function resolveOperation(
  query: string,
  operationName?: string | null,
): { kind: OperationTypeNode | null; name: string | undefined } {
  try {
    const ops = parse(query).definitions.filter((d) => d.kind === 'OperationDefinition');
    const named = operationName ? ops.find((d) => d.name?.value === operationName) : undefined;
    const op = named ?? (ops.length === 1 ? ops[0] : undefined);
    if (!op) return { kind: null, name: operationName ?? undefined };
    return { kind: op.operation, name: op.name?.value };
  } catch {
    // The server will explain the syntax error over HTTP.
    return { kind: null, name: operationName ?? undefined };
  }
}

function stringHeaders(headers: FetcherOpts['headers']): Headers {
  const out: Headers = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value != null) out[name] = String(value);
  }
  return out;
}

// One socket at a time, opened with the Headers tab's values as the
// `connection_init` payload; a change of headers opens a fresh one.
let socket: { key: string; client: Client } | null = null;

function socketFor(headers: Headers): Client {
  const key = JSON.stringify(headers);
  if (socket?.key === key) return socket.client;
  // A socket still connecting rejects its disposal with its close event.
  if (socket) void Promise.resolve(socket.client.dispose()).catch(() => undefined);
  const client = createClient({ url: graphqlWsUrl(), connectionParams: headers, lazy: true, retryAttempts: 0 });
  socket = { key, client };
  return client;
}

function describeSocketError(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const { code, reason } = err as { code: number; reason?: string };
    const hint = code === 4403 ? ': the API key in Headers was refused' : '';
    return `WebSocket closed with ${code}${reason ? ` (${reason})` : ''}${hint}`;
  }
  if (Array.isArray(err)) return err.map((e: { message?: string }) => e.message ?? String(e)).join('; ');
  return err instanceof Error ? err.message : 'WebSocket error';
}

/** A subscription's results; a socket failure ends it with a readable error. */
async function* overSocket(params: FetcherParams, headers: Headers): AsyncGenerator<ExecutionResult> {
  const results = socketFor(headers).iterate({
    query: params.query,
    operationName: params.operationName ?? undefined,
    variables: params.variables as Record<string, unknown> | undefined,
  });
  try {
    // Stopping the run in GraphiQL returns this generator, which ends the subscription.
    for await (const result of results) yield result as ExecutionResult;
  } catch (err) {
    yield { errors: [{ message: describeSocketError(err) }] } as unknown as ExecutionResult;
  }
}

async function overHttp(params: FetcherParams, headers: Headers): Promise<ExecutionResult> {
  const response = await fetch(GRAPHQL_PATH, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
    body: JSON.stringify(params),
  });
  const text = await response.text();
  try {
    return JSON.parse(text) as ExecutionResult;
  } catch {
    throw new Error(`HTTP ${response.status}: ${text.slice(0, 500)}`);
  }
}

export const fetcher: Fetcher = (params, opts) => {
  const headers = stringHeaders(opts?.headers);
  const { kind, name } = resolveOperation(params.query, params.operationName);
  const resolved: FetcherParams = { ...params, operationName: name ?? null };
  return kind === 'subscription' ? overSocket(resolved, headers) : overHttp(resolved, headers);
};
