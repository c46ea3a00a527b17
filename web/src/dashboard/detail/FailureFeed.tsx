import type { Item } from '../api/types';
import { formatAgo } from '../lib/format';

/** Items failing right now, newest first, from the `taskItemsUpdated` stream. */
export function FailureFeed({ feed, now }: { feed: Item[]; now: number }) {
  return (
    <section className="card" aria-labelledby="feed-title">
      <h2 id="feed-title">Live failures</h2>
      {feed.length === 0 ? (
        <p className="muted">Items that fail from now on appear here as it happens.</p>
      ) : (
        <ol className="feed" aria-live="polite">
          {feed.map((item) => (
            <li key={item.id}>
              <span className="feed-index">#{item.index}</span>
              {item.clientItemId && <code className="feed-client">{item.clientItemId}</code>}
              <code className="error-code">{item.error?.code ?? 'FAILED'}</code>
              <span className="feed-message">{item.error?.message}</span>
              <span className="muted small feed-time">{formatAgo(item.updatedAt, now)}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
