import { ApiError } from '../api/http';

export const SCOPE_MESSAGE =
  'This API key may not manage webhooks: it needs the webhooks:manage scope. Sign in with a key that has it.';

/** An error as a sentence; a missing scope says which one. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError && err.code === 'FORBIDDEN') return SCOPE_MESSAGE;
  return err instanceof Error ? err.message : String(err);
}

export function isForbidden(err: unknown): boolean {
  return err instanceof ApiError && err.code === 'FORBIDDEN';
}
