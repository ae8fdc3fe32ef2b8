import OpenAI from 'openai';
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
/** Chars of a validation error sent back to the model when its answer does not match the schema. */
const MAX_VALIDATION_FEEDBACK_CHARS = 2000;

export interface TextRequest {
  system?: string;
  prompt: string;
  /** Names the durable step (`model:<name>`); default "generate". */
  name?: string;
  maxTokens?: number;
}

export interface ObjectRequest<Schema extends z.ZodType> extends TextRequest {
  schema: Schema;
}

/** What a handler uses to call the model provider (ctx.model); null when none is configured. */
export interface TaskModel {
  /** The model this agent's calls use (CAS_LLM_MODEL, or CAS_LLM_AGENT_MODELS for the agent). */
  readonly name: string;
  /** Streams the answer into ctx.output and returns it. A durable step: run once per task. */
  generateText(request: TextRequest): Promise<string>;
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

/** One OpenAI client per process and configuration (connection reuse). */
const clients = new WeakMap<LlmConfig, OpenAI>();
function clientFor(llm: LlmConfig): OpenAI {
  let client = clients.get(llm);
  if (!client) {
    client = new OpenAI({
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

interface Answer {
  text: string;
}

/** How long to wait before retry `attempt` (0-based): Retry-After when the server sent one. */
function backoffMs(error: unknown, attempt: number): number {
  const header = error instanceof OpenAI.APIError ? error.headers?.get('retry-after') : null;
  const seconds = header ? Number(header) : Number.NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
  return Math.min(BASE_BACKOFF_MS * 2 ** attempt, MAX_BACKOFF_MS);
}

/** 429, 5xx, a connection failure or timeout, or a stream that broke mid-answer. */
function isRetryable(error: unknown): boolean {
  if (error instanceof OpenAI.APIError && error.status !== undefined) {
    return error.status === 429 || error.status === 408 || error.status >= 500;
  }
  return true;
}

export function createTaskModel(llm: LlmConfig, deps: ModelSessionDeps): TaskModel {
  const model = modelFor(llm, deps.agentId);
  const client = clientFor(llm);

  /** One streamed completion, retried with backoff; text a failed try streamed is taken back. */
  async function complete(
    messages: ChatCompletionMessageParam[],
    request: TextRequest,
    responseFormat?: OpenAI.ResponseFormatJSONSchema,
  ): Promise<Answer> {
    for (let attempt = 0; ; attempt += 1) {
      const mark = deps.outputLength();
      try {
        const stream = await client.chat.completions.create(
          {
            model,
            messages,
            stream: true,
            stream_options: { include_usage: true },
            ...(request.maxTokens ? { max_tokens: request.maxTokens } : {}),
            ...(responseFormat ? { response_format: responseFormat } : {}),
          },
          { signal: deps.signal },
        );
        let text = '';
        let usage: OpenAI.CompletionUsage | null = null;
        for await (const chunk of stream) {
          if (chunk.usage) usage = chunk.usage;
          const delta = chunk.choices[0]?.delta?.content;
          if (delta) {
            text += delta;
            deps.output(delta);
          }
        }
        if (usage) await deps.recordUsage(model, usage.prompt_tokens, usage.completion_tokens);
        return { text };
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

  return {
    name: model,
    generateText: async (request) =>
      (await inStep(request, () => complete(messagesOf(request), request))).text,
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
