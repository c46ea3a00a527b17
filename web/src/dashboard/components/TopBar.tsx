import { useSession } from '../auth/session';
import { Logo } from './Logo';

const SOCKET_LABEL = { connecting: 'Connecting…', open: 'Live', retrying: 'Reconnecting…', idle: 'Idle' } as const;

export function TopBar() {
  const { socketState, signOut } = useSession();
  return (
    <header className="topbar">
      <a href="#/" className="topbar-home" aria-label="bulkwatch: all tasks">
        <Logo />
      </a>
      <nav className="topbar-nav" aria-label="Main">
        <a href="#/">Tasks</a>
        <a href="#/endpoints">Endpoints</a>
        <a href="/graphiql">GraphiQL</a>
      </nav>
      <span className={`live live-${socketState}`} role="status" title="Live updates over WebSocket">
        <span className="live-dot" aria-hidden="true" />
        {SOCKET_LABEL[socketState]}
      </span>
      <button type="button" className="btn btn-ghost" onClick={() => signOut()}>
        Sign out
      </button>
    </header>
  );
}
