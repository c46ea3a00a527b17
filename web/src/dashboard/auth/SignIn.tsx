import { useState, type FormEvent } from 'react';
import { Logo } from '../components/Logo';

interface Props {
  error: string | null;
  onSignIn: (key: string) => void;
}

/** Asks for an API key; the session keeps it in sessionStorage only. */
export function SignIn({ error, onSignIn }: Props) {
  const [key, setKey] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const trimmed = key.trim().replace(/^Bearer\s+/i, '');
    if (trimmed) onSignIn(trimmed);
  };
  return (
    <main className="signin">
      <form className="signin-card" onSubmit={submit} aria-labelledby="signin-title">
        <Logo />
        <h1 id="signin-title">Sign in</h1>
        <p className="muted">
          Paste an API key with the <code>tasks:read</code> scope (and <code>tasks:write</code> to cancel or retry).
          The first start of the server prints an admin key.
        </p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="bw_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'signin-error' : undefined}
          autoFocus
        />
        {error && (
          <p id="signin-error" className="alert alert-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="btn btn-primary" disabled={!key.trim()}>
          Sign in
        </button>
        <p className="muted small">
          The key stays in this tab (session storage) and is sent only to this server. Explore the API in{' '}
          <a href="/graphiql">GraphiQL</a>.
        </p>
      </form>
    </main>
  );
}
