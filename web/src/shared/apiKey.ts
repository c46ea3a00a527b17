// The API key lives in sessionStorage only: it goes when the tab closes and
// never appears in a URL. Both pages read it, so GraphiQL starts signed in.
const STORAGE_KEY = 'bulkwatch.apiKey';

export function loadApiKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function saveApiKey(key: string): void {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function clearApiKey(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

export function bearer(key: string): string {
  return `Bearer ${key}`;
}
