import { useEffect, useState, type FormEvent } from 'react';
import { onConnectionState, setToken, storedToken, type ConnectionState } from './api';
import { AgentsPage } from './pages/AgentsPage';
import { RunPage } from './pages/RunPage';
import { TaskPage } from './pages/TaskPage';
import { TasksPage } from './pages/TasksPage';
import { WorkflowPage, WorkflowsPage } from './pages/WorkflowsPage';
import { useRoute, type Route } from './router';

const NAV: { href: string; label: string; pages: Route['page'][] }[] = [
  { href: '#/agents', label: 'Agents', pages: ['agents'] },
  { href: '#/tasks', label: 'Tasks', pages: ['tasks', 'task'] },
  { href: '#/run', label: 'Run a task', pages: ['run'] },
  { href: '#/workflows', label: 'Workflows', pages: ['workflows', 'workflow'] },
];

function ConnectionBanner() {
  const [state, setState] = useState<ConnectionState>('connecting');
  useEffect(() => onConnectionState(setState), []);
  const text = { connecting: 'Connecting…', connected: 'Live', reconnecting: 'Reconnecting…' }[state];
  return (
    <p className={`connection ${state}`} role="status" aria-live="polite" data-connection={state}>
      {text}
    </p>
  );
}

function SignIn() {
  const [open, setOpen] = useState(false);
  const [value, setValue] = useState(storedToken);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setToken(value.trim());
    setOpen(false);
  };
  if (!open) {
    return (
      <button type="button" className="link" onClick={() => setOpen(true)}>
        {storedToken() ? 'Signed in (change token)' : 'Sign in'}
      </button>
    );
  }
  return (
    <form className="sign-in" onSubmit={submit}>
      <label htmlFor="token">API key or access token</label>
      <input
        id="token"
        type="password"
        autoComplete="off"
        value={value}
        onChange={(event) => setValue(event.target.value)}
        placeholder="cas_… or a Supabase JWT"
      />
      <button type="submit">Save</button>
      <button type="button" onClick={() => setOpen(false)}>
        Cancel
      </button>
    </form>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'agents':
      return <AgentsPage />;
    case 'tasks':
      return <TasksPage />;
    case 'task':
      return <TaskPage id={route.id} />;
    case 'run':
      return <RunPage agentId={route.agentId} />;
    case 'workflows':
      return <WorkflowsPage />;
    case 'workflow':
      return <WorkflowPage id={route.id} />;
  }
}

export function App() {
  const route = useRoute();
  return (
    <>
      <header>
        <a className="brand" href="#/agents">
          CAS Runtime
        </a>
        <nav aria-label="Pages">
          {NAV.map((item) => (
            <a
              key={item.href}
              href={item.href}
              aria-current={item.pages.includes(route.page) ? 'page' : undefined}
            >
              {item.label}
            </a>
          ))}
        </nav>
        <ConnectionBanner />
        <SignIn />
      </header>
      <main>
        <Page route={route} key={JSON.stringify(route)} />
      </main>
    </>
  );
}
