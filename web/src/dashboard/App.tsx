import { useCallback, useEffect, useState } from 'react';
import { clearApiKey, loadApiKey, saveApiKey } from '../shared/apiKey';
import { SessionProvider } from './auth/session';
import { SignIn } from './auth/SignIn';
import { TopBar } from './components/TopBar';
import { TaskDetailView } from './detail/TaskDetailView';
import { EndpointsView } from './endpoints/EndpointsView';
import { TaskListView } from './list/TaskListView';
import { useRoute } from './route';

export function App() {
  const [apiKey, setApiKey] = useState<string | null>(loadApiKey);
  const [signInError, setSignInError] = useState<string | null>(null);
  const route = useRoute();

  const signIn = useCallback((key: string) => {
    saveApiKey(key);
    setSignInError(null);
    setApiKey(key);
  }, []);
  const signOut = useCallback((reason?: string) => {
    clearApiKey();
    setSignInError(reason ?? null);
    setApiKey(null);
  }, []);

  useEffect(() => {
    const titles = { task: 'Task', list: 'Tasks', endpoints: 'Endpoints' } as const;
    document.title = `${titles[route.name]} · bulkwatch`;
  }, [route]);

  if (!apiKey) return <SignIn error={signInError} onSignIn={signIn} />;
  return (
    <SessionProvider apiKey={apiKey} onSignOut={signOut}>
      <TopBar />
      <main className="page">
        {route.name === 'task' ? (
          <TaskDetailView key={route.id} id={route.id} />
        ) : route.name === 'endpoints' ? (
          <EndpointsView />
        ) : (
          <TaskListView />
        )}
      </main>
    </SessionProvider>
  );
}
