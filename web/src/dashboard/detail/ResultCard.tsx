import type { Artifact, TaskDetail } from '../api/types';
import { formatCount, formatDateTime } from '../lib/format';

function sizeText(bytes: number | null): string | null {
  if (bytes == null) return null;
  if (bytes < 1024) return `${formatCount(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function ArtifactList({ artifacts }: { artifacts: Artifact[] }) {
  if (artifacts.length === 0) return <p className="muted">No files yet.</p>;
  return (
    <ul className="artifacts" aria-label="Artifacts">
      {artifacts.map((a) => (
        <li key={a.name}>
          <a href={a.url} rel="noopener noreferrer">
            {a.name}
          </a>
          <span className="muted small">
            {[a.contentType, sizeText(a.sizeBytes), formatDateTime(a.createdAt)].filter(Boolean).join(' · ')}
          </span>
        </li>
      ))}
    </ul>
  );
}

/** Signed links: they download without the key, until they expire (read afresh with every update). */
function ExportLinks({ task }: { task: TaskDetail }) {
  const failures = task.counters.failed + task.counters.rejected;
  return (
    <div className="exports" role="group" aria-label="Exports">
      {failures > 0 && (
        <a className="btn btn-small" href={task.failuresCsv} download>
          ⤓ Download failures CSV
        </a>
      )}
      <a className="btn btn-small" href={task.allCsv} download>
        ⤓ Export all items CSV
      </a>
      <a className="btn btn-small" href={task.allNdjson} download>
        ⤓ Export all items NDJSON
      </a>
    </div>
  );
}

/** What the task handed back: its result, its files, and item exports. */
export function ResultCard({ task }: { task: TaskDetail }) {
  return (
    <section className="card" aria-labelledby="result-title">
      <h2 id="result-title">Result and files</h2>
      {task.result == null ? (
        <p className="muted">No result yet.</p>
      ) : (
        <pre className="json" tabIndex={0} aria-label="Result">
          {JSON.stringify(task.result, null, 2)}
        </pre>
      )}
      <ArtifactList artifacts={task.artifacts} />
      <ExportLinks task={task} />
    </section>
  );
}
