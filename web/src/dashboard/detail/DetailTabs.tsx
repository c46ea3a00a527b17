import { useRef, type KeyboardEvent } from 'react';

export type DetailTab = 'items' | 'audit';

const TABS: { id: DetailTab; label: string }[] = [
  { id: 'items', label: 'Items' },
  { id: 'audit', label: 'Audit' },
];

interface Props {
  tab: DetailTab;
  onTab: (tab: DetailTab) => void;
}

/** The tab list under the task (arrow keys move between tabs). */
export function DetailTabs({ tab, onTab }: Props) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const onKey = (event: KeyboardEvent, index: number) => {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const next = (index + (event.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length;
    onTab(TABS[next]!.id);
    refs.current[next]?.focus();
  };
  return (
    <div className="tabs" role="tablist" aria-label="Task sections">
      {TABS.map((t, i) => (
        <button
          key={t.id}
          ref={(el) => {
            refs.current[i] = el;
          }}
          type="button"
          role="tab"
          id={`tab-${t.id}`}
          aria-selected={tab === t.id}
          aria-controls={`panel-${t.id}`}
          tabIndex={tab === t.id ? 0 : -1}
          className="tab"
          onClick={() => onTab(t.id)}
          onKeyDown={(e) => onKey(e, i)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}
