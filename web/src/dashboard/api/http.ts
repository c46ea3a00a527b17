import { bearer } from '../../shared/apiKey';
import { GRAPHQL_PATH } from '../../shared/endpoints';

/** A GraphQL or transport error, with the server's `extensions.code` when it sent one. */
export class ApiError extends Error {
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
  }
}

interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string };
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: GraphQLErrorBody[];
}

export type Variables = Record<string, unknown>;

/** Posts one operation; resolves with `data` or rejects with an ApiError. */
export async function postGraphQL<T>(key: string, query: string, variables: Variables = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        Authorization: bearer(key),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The server cannot be reached.', 'NETWORK');
  }
  let body: GraphQLResponse<T>;
  try {
    body = (await response.json()) as GraphQLResponse<T>;
  } catch {
    throw new ApiError(`The server answered ${response.status} without a GraphQL body.`, 'BAD_RESPONSE');
  }
  const first = body.errors?.[0];
  if (first) throw new ApiError(first.message, first.extensions?.code);
  if (body.data == null) throw new ApiError('The server answered without data.', 'BAD_RESPONSE');
  return body.data;
}
