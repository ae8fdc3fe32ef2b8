/**
 * An OpenAI-compatible Chat Completions double over real HTTP on 127.0.0.1, scripted per test.
 *
 *   POST /v1/chat/completions  { model, messages, stream: true, response_format?, tools? }
 *     → text/event-stream: `data: {chat.completion.chunk}\n\n` ... (a usage chunk when
 *       stream_options.include_usage) then `data: [DONE]\n\n`
 *
 * Each request takes the next scripted reply: an answer streamed in pieces (optionally held open
 * until the test releases it), tool calls, an HTTP error (429 with Retry-After, 500), a stream cut
 * mid-answer (the socket destroyed), or a malformed chunk. The double records every request body and
 * which streams the client closed before their end (cancellation reaching the upstream request).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Reply =
  | {
      kind: 'answer';
      /** The content, streamed one piece per chunk. */
      pieces: string[];
      usage?: { prompt: number; completion: number };
      /** Waits for this before sending the pieces after the first `holdAfter` ones. */
      hold?: Promise<void>;
      holdAfter?: number;
    }
  | { kind: 'tool_calls'; calls: Array<{ id: string; name: string; arguments: string }> }
  | { kind: 'status'; status: number; retryAfterSeconds?: number; message?: string }
  /** Streams `pieces`, then destroys the socket without [DONE]. */
  | { kind: 'cut'; pieces: string[] }
  /** Streams `pieces`, then a `data:` line that is not JSON. */
  | { kind: 'malformed'; pieces: string[] };

export interface RecordedRequest {
  body: {
    model: string;
    messages: Array<{ role: string; content: string }>;
    stream?: boolean;
    response_format?: { type: string; json_schema?: { name: string; schema: unknown } };
    [key: string]: unknown;
  };
  receivedAt: number;
}

export interface OpenAiDouble {
  /** Base URL for CAS_LLM_BASE_URL, e.g. http://127.0.0.1:PORT/v1. */
  baseUrl: string;
  /** Queues replies, answered in order; a request with none queued gets a 500. */
  script(...replies: Reply[]): void;
  readonly requests: RecordedRequest[];
  /** Streams the client closed before the double finished them. */
  readonly closedEarly: number;
  /** Resolves when the client closes a stream before its end. */
  nextEarlyClose(): Promise<void>;
  close(): Promise<void>;
}

const chunk = (id: string, model: string, delta: Record<string, unknown>, finish: string | null = null) => ({
  id,
  object: 'chat.completion.chunk',
  created: Math.floor(Date.now() / 1000),
  model,
  choices: [{ index: 0, delta, finish_reason: finish }],
});

const sse = (response: ServerResponse, data: unknown) =>
  response.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

export async function startOpenAiDouble(): Promise<OpenAiDouble> {
  const queue: Reply[] = [];
  const requests: RecordedRequest[] = [];
  let closedEarly = 0;
  let earlyCloseWaiters: Array<() => void> = [];
  let counter = 0;

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    let raw = '';
    for await (const part of request) raw += String(part);
    if (request.method !== 'POST' || !request.url?.endsWith('/chat/completions')) {
      response
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"error":{"message":"not found"}}');
      return;
    }
    const body = JSON.parse(raw) as RecordedRequest['body'];
    requests.push({ body, receivedAt: Date.now() });
    const reply = queue.shift() ?? { kind: 'status', status: 500, message: 'nothing scripted' };
    if (reply.kind === 'status') {
      response
        .writeHead(reply.status, {
          'content-type': 'application/json',
          ...(reply.retryAfterSeconds !== undefined
            ? { 'retry-after': String(reply.retryAfterSeconds) }
            : {}),
        })
        .end(
          JSON.stringify({ error: { message: reply.message ?? `status ${reply.status}`, type: 'double' } }),
        );
      return;
    }
    const id = `chatcmpl-${(counter += 1)}`;
    let finished = false;
    response.on('close', () => {
      if (finished) return;
      closedEarly += 1;
      const waiters = earlyCloseWaiters;
      earlyCloseWaiters = [];
      for (const wake of waiters) wake();
    });
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    sse(response, chunk(id, body.model, { role: 'assistant', content: '' }));
    if (reply.kind === 'tool_calls') {
      sse(
        response,
        chunk(id, body.model, {
          tool_calls: reply.calls.map((call, index) => ({
            index,
            id: call.id,
            type: 'function',
            function: { name: call.name, arguments: call.arguments },
          })),
        }),
      );
      sse(response, chunk(id, body.model, {}, 'tool_calls'));
    } else {
      for (const [index, piece] of reply.pieces.entries()) {
        if (reply.kind === 'answer' && reply.hold && index === (reply.holdAfter ?? 1)) await reply.hold;
        if (response.destroyed) return;
        sse(response, chunk(id, body.model, { content: piece }));
      }
      if (reply.kind === 'cut') {
        finished = true;
        response.socket?.destroy();
        return;
      }
      if (reply.kind === 'malformed') {
        finished = true;
        response.write('data: {"id": "broken", "choices": [\n\n');
        response.end();
        return;
      }
      sse(response, chunk(id, body.model, {}, 'stop'));
      const include = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
      if (include && reply.usage) {
        sse(response, {
          ...chunk(id, body.model, {}),
          choices: [],
          usage: {
            prompt_tokens: reply.usage.prompt,
            completion_tokens: reply.usage.completion,
            total_tokens: reply.usage.prompt + reply.usage.completion,
          },
        });
      }
    }
    sse(response, '[DONE]');
    finished = true;
    response.end();
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    script: (...replies) => queue.push(...replies),
    requests,
    get closedEarly() {
      return closedEarly;
    },
    nextEarlyClose: () => new Promise<void>((resolve) => earlyCloseWaiters.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
