import { useMemo, useState, type FormEvent } from 'react';
import { ApiError, request } from '../api';
import { ErrorNote, useLoad } from '../components';
import { graphql } from '../gql';
import { navigate, taskHref } from '../router';
import { SchemaForm, initialValues, valuesToInput, type JsonSchema } from './SchemaForm';

const ActionsQuery = graphql(`
  query DashboardActions {
    agents {
      id
      name
      status
      actions {
        name
        description
        inputSchema
      }
    }
  }
`);

const ExecuteTask = graphql(`
  mutation DashboardExecuteTask($input: ExecuteTaskInput!) {
    executeTask(input: $input) {
      id
    }
  }
`);

export function RunPage({ agentId: initialAgent }: { agentId?: string }) {
  const { data, error } = useLoad(() => request(ActionsQuery), []);
  const agents = data?.agents.filter((agent) => agent.status !== 'STOPPED') ?? [];
  const [agentId, setAgentId] = useState(initialAgent ?? '');
  const agent = agents.find((candidate) => candidate.id === agentId) ?? agents[0];
  const [actionName, setActionName] = useState('');
  const action = agent?.actions.find((candidate) => candidate.name === actionName) ?? agent?.actions[0];
  const schema = (action?.inputSchema ?? null) as JsonSchema | null;
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const defaults = useMemo(() => initialValues(schema), [schema]);
  const [submitError, setSubmitError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!agent || !action) return;
    try {
      const input = valuesToInput(schema, { ...defaults, ...values });
      const { executeTask } = await request(ExecuteTask, {
        input: { agentId: agent.id, action: action.name, input },
      });
      navigate(taskHref(executeTask.id));
    } catch (failure) {
      setSubmitError(failure instanceof ApiError ? failure : new ApiError([{ message: String(failure) }]));
    }
  };

  return (
    <section aria-labelledby="run-title">
      <h1 id="run-title">Run a task</h1>
      <ErrorNote error={error ?? submitError} />
      {agent && (
        <form className="run" onSubmit={submit}>
          <label>
            Agent
            <select
              name="agent"
              value={agent.id}
              onChange={(event) => {
                setAgentId(event.target.value);
                setActionName('');
                setValues({});
              }}
            >
              {agents.map((candidate) => (
                <option key={candidate.id} value={candidate.id}>
                  {candidate.name} ({candidate.id})
                </option>
              ))}
            </select>
          </label>
          <label>
            Action
            <select
              name="action"
              value={action?.name ?? ''}
              onChange={(event) => {
                setActionName(event.target.value);
                setValues({});
              }}
            >
              {agent.actions.map((candidate) => (
                <option key={candidate.name} value={candidate.name}>
                  {candidate.name}
                </option>
              ))}
            </select>
          </label>
          {action?.description && <p className="muted">{action.description}</p>}
          <fieldset>
            <legend>Input</legend>
            <SchemaForm
              key={`${agent.id}.${action?.name}`}
              schema={schema}
              values={{ ...defaults, ...values }}
              onChange={(name, value) => setValues((current) => ({ ...current, [name]: value }))}
            />
          </fieldset>
          <button type="submit">Run</button>
        </form>
      )}
    </section>
  );
}
