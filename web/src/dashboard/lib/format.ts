// Fixed locale: the same numbers read the same on every machine (and in screenshots).
const LOCALE = 'en-US';
const integer = new Intl.NumberFormat(LOCALE);
const compact = new Intl.NumberFormat(LOCALE, { notation: 'compact', maximumFractionDigits: 1 });

export function formatCount(n: number): string {
  return n >= 100_000 ? compact.format(n) : integer.format(n);
}

/** Progress (0..1) as the whole percentage the progress bar announces. */
export function percent(progress: number): number {
  return Math.max(0, Math.min(100, Math.round(progress * 100)));
}

export function formatRate(perSecond: number): string {
  if (perSecond >= 1) return `${perSecond >= 100 ? compact.format(Math.round(perSecond)) : perSecond.toFixed(1)}/s`;
  if (perSecond * 60 >= 1) return `${(perSecond * 60).toFixed(1)}/min`;
  if (perSecond > 0) return `${(perSecond * 3600).toFixed(1)}/h`;
  return '0/s';
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatAgo(iso: string, now = Date.now()): string {
  const seconds = (now - Date.parse(iso)) / 1000;
  if (seconds < 5) return 'just now';
  return `${formatDuration(seconds).split(' ')[0]} ago`;
}

/** A time ahead, as "in 3d" (or "soon" once it is due). */
export function formatIn(iso: string, now = Date.now()): string {
  const seconds = (Date.parse(iso) - now) / 1000;
  if (seconds < 60) return 'soon';
  return `in ${formatDuration(seconds).split(' ')[0]}`;
}

const dateTime = new Intl.DateTimeFormat(LOCALE, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

export function formatDateTime(iso: string | null): string {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

export function humanStatus(status: string): string {
  const lower = status.toLowerCase().replace(/_/g, ' ');
  return lower.charAt(0).toUpperCase() + lower.slice(1);
}
