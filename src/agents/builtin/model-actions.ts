import { z } from 'zod';
import { defineAction, type ActionDefinition, type ActionMap } from '../actions.js';
import { TaskFailure } from '../../runtime/handlers.js';
import { stepIdSchema } from '../../domains/workflow/workflow.js';

/** Longest free-text input field (a spec, code under review...). */
const MAX_TEXT = 100_000;
const text = (max = MAX_TEXT) => z.string().trim().min(1).max(max);

/**
 * A model-backed action: the model answers JSON matching `output` (structured output, validated,
 * retried once with the validation error, then MODEL_OUTPUT_INVALID), streamed into Task.output.
 */
function modelAction<Input extends z.ZodType, Output extends z.ZodType>(definition: {
  description: string;
  input: Input;
  output: Output;
  system: string;
  prompt: (input: z.output<Input>) => string;
}): ActionDefinition<Input, Output> {
  return defineAction({
    description: `${definition.description} Model-backed: needs a provider (CAS_LLM_*).`,
    model: true,
    input: definition.input,
    output: definition.output,
    run: async (input, ctx) => {
      if (!ctx.model) {
        throw new TaskFailure(
          'no model provider is configured (CAS_LLM_BASE_URL, CAS_LLM_MODEL)',
          'PROVIDER_NOT_CONFIGURED',
          false,
        );
      }
      return ctx.model.generateObject({
        name: ctx.action,
        system: `${definition.system} Answer with JSON only, matching the given JSON Schema.`,
        prompt: definition.prompt(input),
        schema: definition.output,
      }) as Promise<z.input<Output>>;
    },
  });
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

export const marketerActions: ActionMap = {
  create_content: modelAction({
    description:
      'Writes marketing content on `topic` for an audience and channel: a title, a body and hashtags.',
    input: z.object({
      topic: text(2000),
      audience: text(500).optional(),
      channel: text(100).optional(),
      tone: text(100).optional(),
    }),
    output: z.object({
      title: z.string().min(1).max(300),
      body: z.string().min(1).max(20_000),
      hashtags: z.array(z.string().max(100)).max(30),
    }),
    system: 'You are a marketing copywriter.',
    prompt: (input) => `Write content.\n${json(input)}`,
  }),
};

/** Whether an agent has an action (the runtime's registry), for checking a plan. */
export type KnownAction = (agentId: string, action: string) => boolean;

/** A plan's step is a workflow step (src/domains/workflow): the plan runs as a workflow as it is. */
const planStep = z.object({
  id: stepIdSchema,
  agentId: z.string().min(1).max(63),
  action: z.string().min(1).max(100),
  input: z.record(z.string(), z.unknown()),
  dependsOn: z.array(stepIdSchema).max(50),
});

/**
 * planner's plan: the model's steps are checked against the agents' actions and each other (an
 * unknown action or dependency is a validation error the model is asked to fix once).
 */
export const plannerActions = (known: KnownAction): ActionMap => ({
  plan: modelAction({
    description: 'Breaks `goal` into ordered steps, each assigned to an agent and one of its actions.',
    input: z.object({ goal: text(5000), agents: z.array(z.string().max(63)).max(50).optional() }),
    output: z.object({ steps: z.array(planStep).min(1).max(50) }).superRefine((plan, context) => {
      const ids = new Set(plan.steps.map((step) => step.id));
      plan.steps.forEach((step, index) => {
        if (!known(step.agentId, step.action)) {
          context.addIssue({
            code: 'custom',
            path: ['steps', index, 'action'],
            message: `agent "${step.agentId}" has no action "${step.action}"`,
          });
        }
        for (const dependency of step.dependsOn) {
          if (!ids.has(dependency) || dependency === step.id) {
            context.addIssue({
              code: 'custom',
              path: ['steps', index, 'dependsOn'],
              message: `"${dependency}" is not another step of the plan`,
            });
          }
        }
      });
    }),
    system:
      'You plan work for a team of agents: marketer (create_content), analyst (analyze_metrics), developer (write_code), ' +
      'tester (write_tests), qa (review), engineer (estimate), security (scan_secrets, threat_model).',
    prompt: (input) => `Plan the goal as steps over the agents.\n${json(input)}`,
  }),
});

const files = z
  .array(z.object({ path: z.string().min(1).max(500), content: z.string().max(MAX_TEXT) }))
  .max(50);

export const developerActions: ActionMap = {
  write_code: modelAction({
    description: 'Writes code for `spec` in `language`: files with paths and contents.',
    input: z.object({ spec: text(), language: text(50) }),
    output: z.object({ files: files.min(1), notes: z.string().max(5000).optional() }),
    system: 'You are a senior software developer.',
    prompt: (input) => `Write the code.\n${json(input)}`,
  }),
};

export const testerActions: ActionMap = {
  write_tests: modelAction({
    description: 'Writes tests for `code` (in `framework` when given): test files.',
    input: z.object({ code: text(), framework: text(100).optional() }),
    output: z.object({ files: files.min(1) }),
    system: 'You write thorough automated tests.',
    prompt: (input) => `Write tests.\n${json(input)}`,
  }),
};

const severity = z.enum(['info', 'low', 'medium', 'high', 'critical']);

export const qaActions: ActionMap = {
  review: modelAction({
    description: 'Reviews `artifact` against `criteria`: findings with severity.',
    input: z.object({ artifact: text(), criteria: z.array(text(1000)).max(50).optional() }),
    output: z.object({
      findings: z
        .array(z.object({ severity, title: z.string().max(300), detail: z.string().max(5000) }))
        .max(100),
      approved: z.boolean(),
    }),
    system: 'You are a meticulous QA reviewer.',
    prompt: (input) => `Review the artifact.\n${json(input)}`,
  }),
};

export const engineerActions: ActionMap = {
  estimate: modelAction({
    description: 'Estimates `spec`: components, risks and effort in person-days.',
    input: z.object({ spec: text() }),
    output: z.object({
      components: z
        .array(z.object({ name: z.string().max(200), effortDays: z.number().min(0).max(10_000) }))
        .max(100),
      risks: z.array(z.string().max(1000)).max(50),
      totalEffortDays: z.number().min(0).max(100_000),
    }),
    system: 'You are a software engineering lead who estimates work.',
    prompt: (input) => `Estimate the work.\n${json(input)}`,
  }),
};

export const threatModelAction = modelAction({
  description: 'Threat-models `system` (STRIDE): threats with severity and mitigations.',
  input: z.object({ system: text() }),
  output: z.object({
    threats: z
      .array(
        z.object({
          category: z.enum([
            'spoofing',
            'tampering',
            'repudiation',
            'information_disclosure',
            'denial_of_service',
            'elevation_of_privilege',
          ]),
          title: z.string().max(300),
          severity,
          mitigation: z.string().max(5000),
        }),
      )
      .max(100),
  }),
  system: 'You are an application security engineer.',
  prompt: (input) => `Threat-model this system.\n${json(input)}`,
});
