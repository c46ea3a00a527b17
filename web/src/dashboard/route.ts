import { useEffect, useState } from 'react';

// Client-side routes live in the hash so the server serves one page for all.
export type Route = { name: 'list' } | { name: 'task'; id: string } | { name: 'endpoints' };

function parse(hash: string): Route {
  const match = /^#\/tasks\/([^/?#]+)/.exec(hash);
  if (match?.[1]) return { name: 'task', id: decodeURIComponent(match[1]) };
  if (/^#\/endpoints\b/.test(hash)) return { name: 'endpoints' };
  return { name: 'list' };
}

export function taskHref(id: string): string {
  return `#/tasks/${encodeURIComponent(id)}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parse(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
