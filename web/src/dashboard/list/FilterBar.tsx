import { useEffect, useState } from 'react';
import { ORDER_OPTIONS, type ListParams } from './params';

interface Props {
  params: ListParams;
  onChange: (patch: Partial<ListParams>) => void;
}

const TYPING_DELAY_MS = 300;

/** Text fields commit after a pause in typing, so a word costs one request. */
function useDebounced(value: string, commit: (v: string) => void): [string, (v: string) => void] {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  useEffect(() => {
    if (draft === value) return undefined;
    const timer = setTimeout(() => commit(draft), TYPING_DELAY_MS);
    return () => clearTimeout(timer);
  }, [draft, value, commit]);
  return [draft, setDraft];
}

export function FilterBar({ params, onChange }: Props) {
  const [search, setSearch] = useDebounced(params.search, (v) => onChange({ search: v }));
  const [type, setType] = useDebounced(params.type, (v) => onChange({ type: v }));
  const failures = params.hasFailures == null ? 'any' : params.hasFailures ? 'yes' : 'no';
  // On a phone the less used filters fold away behind a button.
  const [expanded, setExpanded] = useState(false);
  const active = [params.type, params.hasFailures != null, params.createdAfter, params.createdBefore].filter(Boolean).length;
  return (
    <form
      className={`filters${expanded ? ' is-expanded' : ''}`}
      role="search"
      aria-label="Filter tasks"
      onSubmit={(e) => e.preventDefault()}
    >
      <label className="field field-grow">
        <span>Search</span>
        <input type="search" placeholder="Description or type" value={search} onChange={(e) => setSearch(e.target.value)} />
      </label>
      <button
        type="button"
        className="btn filters-toggle"
        aria-expanded={expanded}
        aria-controls="more-filters"
        onClick={() => setExpanded((x) => !x)}
      >
        Filters{active ? ` (${active})` : ''}
      </button>
      <div className="filters-more" id="more-filters">
        <label className="field field-type">
          <span>Type</span>
          <input type="text" placeholder="e.g. sims.bulk_provision" value={type} onChange={(e) => setType(e.target.value)} />
        </label>
        <label className="field">
          <span>Failures</span>
          <select
            value={failures}
            onChange={(e) => onChange({ hasFailures: e.target.value === 'any' ? null : e.target.value === 'yes' })}
          >
            <option value="any">Any</option>
            <option value="yes">With failures</option>
            <option value="no">Without failures</option>
          </select>
        </label>
        <label className="field field-date">
          <span>Created from</span>
          <input type="date" value={params.createdAfter} onChange={(e) => onChange({ createdAfter: e.target.value })} />
        </label>
        <label className="field field-date">
          <span>Created to</span>
          <input type="date" value={params.createdBefore} onChange={(e) => onChange({ createdBefore: e.target.value })} />
        </label>
      </div>
      <label className="field field-sort">
        <span>Sort</span>
        <select value={params.order} onChange={(e) => onChange({ order: e.target.value as ListParams['order'] })}>
          {ORDER_OPTIONS.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      </label>
    </form>
  );
}
