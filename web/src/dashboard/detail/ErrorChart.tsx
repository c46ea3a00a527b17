import type { ErrorCodeCount } from '../api/types';
import { formatCount } from '../lib/format';

// Codes given at admission (REJECTED items): retrying cannot change them.
const ADMISSION_CODES = new Set([
  'DUPLICATE_CLIENT_ITEM_ID',
  'PAYLOAD_TOO_LARGE',
  'PAYLOAD_NOT_OBJECT',
  'INVALID_CLIENT_ITEM_ID',
]);

interface Props {
  summary: ErrorCodeCount[];
  canRetry: boolean;
  onRetry: (code: string) => void;
}

/** Failed and rejected items per error code, as horizontal bars. */
export function ErrorChart({ summary, canRetry, onRetry }: Props) {
  const max = Math.max(1, ...summary.map((s) => s.count));
  return (
    <section className="card" aria-labelledby="errors-title">
      <h2 id="errors-title">Failures by code</h2>
      {summary.length === 0 ? (
        <p className="muted">No failed or rejected items.</p>
      ) : (
        <ul className="error-chart">
          {summary.map((s) => (
            <li key={s.code} data-code={s.code}>
              <div className="error-line">
                <code className="error-code">{s.code}</code>
                <span className="error-count">{formatCount(s.count)}</span>
                {canRetry && !ADMISSION_CODES.has(s.code) && (
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={() => onRetry(s.code)}
                    aria-label={`Retry items failed with ${s.code}`}
                  >
                    Retry
                  </button>
                )}
              </div>
              <div className="error-bar" aria-hidden="true">
                <span style={{ width: `${(s.count / max) * 100}%` }} />
              </div>
              <p className="error-sample muted small" title="A sample message">
                {s.sampleMessage}
              </p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
