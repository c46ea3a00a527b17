export function Logo() {
  return (
    <span className="logo">
      <svg viewBox="0 0 16 16" width="22" height="22" aria-hidden="true">
        <rect width="16" height="16" rx="4" fill="currentColor" />
        <rect x="3" y="9" width="3" height="4" fill="#fff" />
        <rect x="7" y="6" width="3" height="7" fill="#fff" />
        <rect x="11" y="3" width="2" height="10" fill="#fff" />
      </svg>
      <span className="logo-text">bulkwatch</span>
    </span>
  );
}
