import type OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { z } from 'zod';
import { modelFor, type LlmConfig } from '../../config.js';
import { sleep } from '../../feed/change-feed.js';
import { TaskFailure } from '../../runtime/handlers.js';
import { toJsonSchema } from '../json-schema.js';

/** First backoff of a retried model request; doubles each time, capped by MAX_BACKOFF_MS. */
export const BASE_BACKOFF_MS = 500;
export const MAX_BACKOFF_MS = 30_000;
/** Longest Retry-After honoured; a longer one is capped (the task's own timeout still applies). */
export const MAX_RETRY_AFTER_MS = 60_000;
/** Most model rounds that end in tool calls before an answer; then MODEL_TOOL_ROUNDS_EXCEEDED. */
export const MAX_TOOL_ROUNDS = 5;
/** Most characters of a tool's JSON result sent back to the model. */
const MAX_TOOL_RESULT_CHARS = 20_000;
/** Chars of a validation error sent back to the model when its answer does not match the schema. */
const MAX_VALIDATION_FEEDBACK_CHARS = 2000;

export interface TextRequest {
  system?: string;
  prompt: string;
  /** Names the durable step (`model:<name>`); default "generate". */
  name?: string;
  maxTokens?: number;
}

/**
 * A function the model may call (generateText's `tools`). Each call runs as a durable step
 * `tool:<name>` (an event each), so a replayed task does not repeat it; `run` may use ctx.call.
 */
export interface ModelTool {
  name: string;
  description: string;
  /** The arguments' schema: sent as JSON Schema, and the model's arguments are checked with it. */
  parameters: z.ZodType;
  run(args: unknown): unknown;
  /** True when `run` is itself durable (ctx.call, ctx.step): it is not wrapped in a step. */
  durable?: boolean;
}

export interface ToolTextRequest extends TextRequest {
  tools?: readonly ModelTool[];
}

export interface ObjectRequest<Schema extends z.ZodType> extends TextRequest {
  schema: Schema;
}

/** What a handler uses to call the model provider (ctx.model); null when none is configured. */
export interface TaskModel {
  /** The model this agent's calls use (CAS_LLM_MODEL, or CAS_LLM_AGENT_MODELS for the agent). */
  readonly name: string;
  /**
   * Streams the answer into ctx.output and returns it. A durable step: run once per task. With
   * `tools`, the model may call them for up to MAX_TOOL_ROUNDS rounds, each round and each tool
   * call its own step.
   */
  generateText(request: ToolTextRequest): Promise<string>;
  /**
   * Asks for JSON matching `schema` (response_format json_schema), streams it into ctx.output,
   * validates it; an invalid answer is asked again once with the validation error, then the task
   * fails with MODEL_OUTPUT_INVALID. A durable step.
   */
  generateObject<Schema extends z.ZodType>(request: ObjectRequest<Schema>): Promise<z.output<Schema>>;
}

/** What a session needs of its task run. */
export interface ModelSessionDeps {
  agentId: string;
  signal: AbortSignal;
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  output(delta: string): void;
  outputLength(): number;
  rewindOutput(length: number): void;
  recordUsage(model: string, promptTokens: number, completionTokens: number): Promise<void>;
}

/**
 * The OpenAI SDK, loaded by the first model request: a process with no provider configured, or
 * that runs no model-backed task, does not load it (about 12 MB and 150 ms of start-up).
 */
let openAiSdk: typeof OpenAI | null = null;
async function loadOpenAiSdk(): Promise<typeof OpenAI> {
  openAiSdk ??= (await import('openai')).default;
  return openAiSdk;
}

/** One OpenAI client per process and configuration (connection reuse). */
const clients = new WeakMap<LlmConfig, OpenAI>();
async function clientFor(llm: LlmConfig): Promise<OpenAI> {
  let client = clients.get(llm);
  if (!client) {
    const OpenAiClient = await loadOpenAiSdk();
    client = new OpenAiClient({
      baseURL: llm.baseUrl,
      // The SDK insists on a key; providers that need none (Ollama) ignore it.
      apiKey: llm.apiKey ?? 'not-needed',
      timeout: llm.timeoutMs,
      // Retries are ours (requestWithRetries): they also cover a stream cut mid-answer.
      maxRetries: 0,
    });
    clients.set(llm, client);
  }
  return client;
}

interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

interface Answer {
  text: string;
  toolCalls?: ToolCall[];
}

/** An error the SDK raised for an HTTP answer (it is loaded once a request was made). */
const isApiError = (error: unknown): error is InstanceType<typeof OpenAI.APIError> =>
  openAiSdk !== null && error instanceof openAiSdk.APIError;

/** How long to wait before retry `attempt` (0-based): Retry-After when the server sent one. */
function backoffMs(error: unknown, attempt: number): number {
  const header = isApiError(error) ? error.headers?.get('retry-after') : null;
  const seconds = header ? Number(header) : Number.NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
  return Math.min(BASE_BACKOFF_MS * 2 ** attempt, MAX_BACKOFF_MS);
}

/** 429, 5xx, a connection failure or timeout, or a stream that broke mid-answer. */
function isRetryable(error: unknown): boolean {
  if (isApiError(error) && error.status !== undefined) {
    return error.status === 429 || error.status === 408 || error.status >= 500;
  }
  return true;
}

export function createTaskModel(llm: LlmConfig, deps: ModelSessionDeps): TaskModel {
  const model = modelFor(llm, deps.agentId);

  /** One streamed completion, retried with backoff; text a failed try streamed is taken back. */
  async function complete(
    messages: ChatCompletionMessageParam[],
    request: TextRequest,
    responseFormat?: OpenAI.ResponseFormatJSONSchema,
    tools?: readonly ModelTool[],
  ): Promise<Answer> {
    for (let attempt = 0; ; attempt += 1) {
      const mark = deps.outputLength();
      try {
        const client = await clientFor(llm);
        const stream = await client.chat.completions.create(
          {
            model,
            messages,
            stream: true,
            stream_options: { include_usage: true },
            ...(request.maxTokens ? { max_tokens: request.maxTokens } : {}),
            ...(responseFormat ? { response_format: responseFormat } : {}),
            ...(tools?.length
              ? {
                  tools: tools.map((tool) => ({
                    type: 'function' as const,
                    function: {
                      name: tool.name,
                      description: tool.description,
                      parameters: toJsonSchema(tool.parameters, 'input'),
                    },
                  })),
                }
              : {}),
          },
          { signal: deps.signal },
        );
        let text = '';
        let usage: OpenAI.CompletionUsage | null = null;
        const toolCalls: ToolCall[] = [];
        for await (const chunk of stream) {
          if (chunk.usage) usage = chunk.usage;
          // Tool calls arrive in pieces by index: the id and name first, the arguments streamed.
          for (const call of chunk.choices[0]?.delta?.tool_calls ?? []) {
            const known = (toolCalls[call.index] ??= { id: '', name: '', arguments: '' });
            if (call.id) known.id = call.id;
            if (call.function?.name) known.name += call.function.name;
            if (call.function?.arguments) known.arguments += call.function.arguments;
          }
          const delta = chunk.choices[0]?.delta?.content;
          if (delta) {
            text += delta;
            deps.output(delta);
          }
        }
        if (usage) await deps.recordUsage(model, usage.prompt_tokens, usage.completion_tokens);
        return toolCalls.length ? { text, toolCalls: toolCalls.filter(Boolean) } : { text };
      } catch (error) {
        deps.rewindOutput(mark);
        if (deps.signal.aborted) throw deps.signal.reason ?? error;
        const message = error instanceof Error ? error.message : String(error);
        if (!isRetryable(error) || attempt >= llm.maxRetries) {
          throw new TaskFailure(
            `model request failed: ${message}`,
            'MODEL_REQUEST_FAILED',
            isRetryable(error),
          );
        }
        await sleep(backoffMs(error, attempt), deps.signal);
      }
    }
  }

  const messagesOf = (request: TextRequest): ChatCompletionMessageParam[] => [
    ...(request.system ? [{ role: 'system' as const, content: request.system }] : []),
    { role: 'user', content: request.prompt },
  ];

  /** Runs `fn` as the step `model:<name>`; a replayed step re-emits its text (see task-output.ts). */
  async function inStep<T extends Answer>(request: TextRequest, fn: () => Promise<T>): Promise<T> {
    let ran = false;
    const result = await deps.step(`model:${request.name ?? 'generate'}`, () => {
      ran = true;
      return fn();
    });
    if (!ran) deps.output(result.text);
    return result;
  }

  /** Runs one tool call; its result (or error) as the JSON the model reads. */
  async function runTool(tools: readonly ModelTool[], call: ToolCall): Promise<string> {
    const tool = tools.find((candidate) => candidate.name === call.name);
    if (!tool) return JSON.stringify({ error: `no tool "${call.name}"` });
    let args: unknown;
    try {
      args = tool.parameters.parse(JSON.parse(call.arguments || '{}'));
    } catch (error) {
      return JSON.stringify({ error: `invalid arguments: ${(error as Error).message}` });
    }
    const run = async () => {
      try {
        return { result: (await tool.run(args)) ?? null };
      } catch (error) {
        // A tool's failure is the model's to handle; an abort (cancel, suspension) is not.
        if (deps.signal.aborted) throw error;
        return { error: error instanceof Error ? error.message : String(error) };
      }
    };
    const outcome = tool.durable ? await run() : await deps.step(`tool:${tool.name}`, run);
    return JSON.stringify(outcome).slice(0, MAX_TOOL_RESULT_CHARS);
  }

  /** Model rounds with tool calls in between, each round a step; ends with the model's answer. */
  async function converse(request: ToolTextRequest): Promise<string> {
    const tools = request.tools ?? [];
    const messages = messagesOf(request);
    for (let round = 0; round <= MAX_TOOL_ROUNDS; round += 1) {
      const offered = round < MAX_TOOL_ROUNDS ? tools : [];
      const answer = await inStep(request, () => complete(messages, request, undefined, offered));
      if (!answer.toolCalls?.length) return answer.text;
      messages.push({
        role: 'assistant',
        content: answer.text || null,
        tool_calls: answer.toolCalls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.name, arguments: call.arguments },
        })),
      });
      for (const call of answer.toolCalls) {
        messages.push({ role: 'tool', tool_call_id: call.id, content: await runTool(tools, call) });
      }
    }
    throw new TaskFailure(
      `the model kept calling tools after ${MAX_TOOL_ROUNDS} rounds`,
      'MODEL_TOOL_ROUNDS_EXCEEDED',
      false,
    );
  }

  return {
    name: model,
    generateText: (request) => converse(request),
    generateObject: async <Schema extends z.ZodType>(request: ObjectRequest<Schema>) => {
      const responseFormat: OpenAI.ResponseFormatJSONSchema = {
        type: 'json_schema',
        json_schema: { name: request.name ?? 'answer', schema: toJsonSchema(request.schema, 'output') },
      };
      const answer = await inStep(request, async () => {
        const messages = messagesOf(request);
        let problem = '';
        for (let round = 0; round < 2; round += 1) {
          const mark = deps.outputLength();
          const { text } = await complete(messages, request, responseFormat);
          problem = validationProblem(request.schema, text);
          if (!problem) return { text, data: request.schema.parse(JSON.parse(text)) as unknown };
          deps.rewindOutput(mark);
          messages.push(
            { role: 'assistant', content: text },
            {
              role: 'user',
              content: `That answer is invalid: ${problem.slice(0, MAX_VALIDATION_FEEDBACK_CHARS)}. Answer again with only JSON matching the schema.`,
            },
          );
        }
        throw new TaskFailure(
          `the model's answer does not match the schema: ${problem}`,
          'MODEL_OUTPUT_INVALID',
          false,
        );
      });
      return answer.data as z.output<Schema>;
    },
  };
}

/** Why `text` is not a JSON value matching `schema`, or '' when it is. */
function validationProblem(schema: z.ZodType, text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return '';
  return parsed.error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}
