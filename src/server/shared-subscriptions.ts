/**
 * Shared subscriptions: graphql-ws subscribers of the same live stream share one execution.
 *
 * Without this, each subscription runs graphql-js for each event on its own: 1,000 dashboards
 * following `events(types: [...])` cost 1,000 executions, their promise chains and garbage per
 * event (about 35 µs per subscriber on the 2-core bench machine, beside the ~7-14 µs of the socket
 * write itself), and the last of them sees the event tens of milliseconds late. Here subscribers
 * whose results cannot differ share one source stream and one execution per event; each gets the
 * same ExecutionResult object in a bounded queue of its own, which graphql-ws then frames with the
 * subscriber's operation id and sends.
 *
 * When results cannot differ, and so may be shared:
 * - the same parsed document (yoga's parse cache hands out one DocumentNode per query text), the
 *   same operationName and the same variables (as JSON);
 * - the same viewer (kind, id, role, grants): whatever the selection, the authorization checks and
 *   the rows a resolver may show see nothing else of the caller;
 * - a root field that declares it (`extensions: SHARE_LIVE_ONLY`) and no cursor: `after` absent or
 *   null. A live-only stream delivers what arrives from now on, so a subscriber that joins a running
 *   stream gets exactly what a stream of its own would (the events after it joined). Streams with a
 *   cursor, and those that start with a snapshot or from a task's first event (taskEvents,
 *   taskUpdated, ...), replay something particular to their start and are never shared.
 *
 * What each subscriber keeps for itself: its bounded queue (one that falls `capacity` results behind
 * ends with SUBSCRIPTION_OVERFLOW and resumes from its last cursor, the others go on), its end (one
 * unsubscribing never ends the others; the source stops when the last leaves), and the gauge of
 * active subscriptions. A subscriber that joins a running stream runs no resolver and opens no
 * context: the checks the first subscriber's `subscribe` made (authorization, arguments) were made
 * for the same viewer and arguments, and its socket closes at its own credentials' expiry.
 */
import { MessageType } from 'graphql-ws';
import { Kind, type DocumentNode, type ExecutionResult, type GraphQLSchema, type ValueNode } from 'graphql';
import type { Viewer } from '../auth/roles.js';
import { CasError, ErrorCode, isCasError } from '../errors.js';
import { fromCasError } from '../graphql/errors.js';
import { BoundedQueue } from '../feed/queue.js';
import { SHARE_LIVE_ONLY } from '../graphql/sharing.js';

/**
 * Bytes a subscriber's socket may hold unsent (its client reads too slowly) before its stream ends
 * with SUBSCRIPTION_OVERFLOW rather than buffering without bound; it resumes from its last cursor.
 */
export const SUBSCRIBER_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** The root field argument that makes a subscription replay from a position (never shared). */
const CURSOR_ARGUMENT = 'after';

const isAsyncIterable = (value: unknown): value is AsyncIterable<ExecutionResult> =>
  typeof Object(value)[Symbol.asyncIterator] === 'function';

/** Whether the literal or variable `value` is null or absent once variables are applied. */
function isNullValue(
  value: ValueNode | undefined,
  variables: Readonly<Record<string, unknown>>,
  defaults: ReadonlyMap<string, ValueNode | undefined>,
): boolean {
  if (!value || value.kind === Kind.NULL) return true;
  if (value.kind !== Kind.VARIABLE) return false;
  const name = value.name.value;
  if (variables[name] !== undefined) return variables[name] === null;
  return isNullValue(defaults.get(name), {}, new Map());
}

/**
 * The key under which this subscription may share a stream, or null when it must run alone (not a
 * subscription, a root field that does not declare SHARE_LIVE_ONLY, a cursor, directives or
 * fragments at the root: anything this check does not read is not shared).
 */
export function shareKey(options: {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName: string | null | undefined;
  variables: Readonly<Record<string, unknown>> | null | undefined;
  viewer: Viewer | undefined;
}): string | null {
  const { schema, document, operationName, viewer } = options;
  if (!viewer) return null;
  const operations = document.definitions.filter(
    (definition) => definition.kind === Kind.OPERATION_DEFINITION,
  );
  const operation = operationName
    ? operations.find((definition) => definition.name?.value === operationName)
    : operations.length === 1
      ? operations[0]
      : undefined;
  if (operation?.operation !== 'subscription') return null;
  const [root, ...others] = operation.selectionSet.selections;
  if (!root || others.length > 0 || root.kind !== Kind.FIELD || root.directives?.length) return null;
  const field = schema.getSubscriptionType()?.getFields()[root.name.value];
  if (field?.extensions?.casShare !== SHARE_LIVE_ONLY.casShare) return null;
  const variables = options.variables ?? {};
  const defaults = new Map(
    (operation.variableDefinitions ?? []).map((definition) => [
      definition.variable.name.value,
      definition.defaultValue,
    ]),
  );
  const cursor = root.arguments?.find((argument) => argument.name.value === CURSOR_ARGUMENT);
  if (!isNullValue(cursor?.value, variables, defaults)) return null;
  return [
    documentId(document),
    operationName ?? '',
    JSON.stringify(variables),
    JSON.stringify([viewer.kind, viewer.id, viewer.role, viewer.grants]),
  ].join('\u0000');
}

/** A number per parsed document, held no longer than the document. */
const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 1;
function documentId(document: DocumentNode): number {
  let id = documentIds.get(document);
  if (id === undefined) documentIds.set(document, (id = nextDocumentId++));
  return id;
}

/** Where a subscriber's messages go: its graphql-ws socket. */
export interface SubscriberSocket {
  /** Sends one text frame now (dropped once the socket is closing). */
  send(frame: string): void;
  /** Bytes queued on the socket and not yet handed to the kernel. */
  bufferedBytes(): number;
}

/**
 * One subscriber of a shared stream. Its `next` messages are written straight to its socket by the
 * stream (one JSON encoding of each result for all members, framed with this member's operation
 * id); what graphql-ws iterates here only ever ends: done when the stream ends, or an error
 * (SUBSCRIPTION_OVERFLOW, the stream's failure), which graphql-ws sends as the operation's error.
 */
class Member implements AsyncIterableIterator<ExecutionResult> {
  private readonly ending = new BoundedQueue<ExecutionResult>(1);
  private readonly results = this.ending[Symbol.asyncIterator]();
  /** `{"id":<id>,"type":"next","payload":` : a result's JSON and `}` complete the message. */
  private readonly prefix: string;
  /** Counted in the gauge of active subscriptions (once its stream was handed out). */
  counted = false;

  constructor(
    id: string,
    private readonly socket: SubscriberSocket,
    private readonly leave: (member: Member) => void,
  ) {
    this.prefix = `{"id":${JSON.stringify(id)},"type":"${MessageType.Next}","payload":`;
  }

  /** Sends `payload` (a result's JSON); false when the socket is too far behind to take it. */
  deliver(payload: string, maxBufferedBytes: number): boolean {
    if (this.socket.bufferedBytes() > maxBufferedBytes) return false;
    this.socket.send(`${this.prefix}${payload}}`);
    return true;
  }

  /** Ends the stream graphql-ws iterates: done, or with `error` when given. */
  end(error?: unknown): void {
    if (error === undefined) this.ending.close();
    else this.ending.fail(error);
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    return this.results.next();
  }

  /** Ends this subscriber at once, even while it waits; the others go on. */
  return(): Promise<IteratorResult<ExecutionResult>> {
    this.leave(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.leave(this);
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

interface Share {
  key: string;
  members: Set<Member>;
  /** The source, once its `subscribe` resolved to a stream. */
  source: AsyncIterator<ExecutionResult> | null;
  /** Aborted when the share ends: the signal of the execution's context. */
  ended: AbortController;
}

export interface SharedSubscriptionHooks {
  /** A subscriber got a stream (the gauge of active subscriptions goes up)... */
  subscriberStarted(): void;
  /** ...and it ended, however. */
  subscriberEnded(): void;
  /** A shared source started or ended (the cas_graphql_shared_subscription_streams gauge). */
  streamStarted(): void;
  streamEnded(): void;
  /** The source produced one result, which every member got (once per event, not per member). */
  resultComputed(): void;
}

/**
 * The shared streams of one server. `join` adds a subscriber to the stream of its key, starting
 * it when none runs.
 */
export class SharedSubscriptions {
  private readonly shares = new Map<string, Share & { started: Promise<unknown> }>();

  constructor(
    private readonly hooks: SharedSubscriptionHooks,
    private readonly maxBufferedBytes = SUBSCRIBER_MAX_BUFFERED_BYTES,
  ) {}

  /** Shared streams running now. */
  get streamCount(): number {
    return this.shares.size;
  }

  /**
   * The subscriber's stream of the share under `key`. When none runs, `start` runs the operation
   * (its context's signal is aborted when the share ends). When it gives a result rather than a
   * stream (an error: NOT_FOUND, BAD_USER_INPUT), every subscriber waiting for it gets that result
   * and the next one starts afresh; when it throws, they all get the error.
   */
  async join(
    key: string,
    start: (signal: AbortSignal) => Promise<unknown>,
    subscriber: { id: string; socket: SubscriberSocket },
  ): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const share = this.shares.get(key) ?? this.open(key, start);
    // A member from now on: the source's results from here reach it.
    const member = new Member(subscriber.id, subscriber.socket, (left) => this.leave(share, left));
    share.members.add(member);
    const started = await share.started.catch((error: unknown) => {
      share.members.delete(member);
      throw error;
    });
    if (!isAsyncIterable(started)) {
      share.members.delete(member);
      return started as ExecutionResult;
    }
    // Still a member (the stream did not end meanwhile, which closed its queue): count it.
    if (share.members.has(member)) {
      member.counted = true;
      this.hooks.subscriberStarted();
    }
    return member;
  }

  private open(key: string, start: (signal: AbortSignal) => Promise<unknown>) {
    const ended = new AbortController();
    const share: Share & { started: Promise<unknown> } = {
      key,
      members: new Set(),
      source: null,
      ended,
      started: Promise.resolve(),
    };
    share.started = start(ended.signal).then(
      (result) => {
        if (!isAsyncIterable(result)) {
          this.forget(share);
          return result;
        }
        share.source = result[Symbol.asyncIterator]();
        this.hooks.streamStarted();
        void this.pump(share, share.source);
        // Everyone left while it started.
        if (share.members.size === 0) this.end(share);
        return result;
      },
      (error: unknown) => {
        this.forget(share);
        throw error;
      },
    );
    this.shares.set(key, share);
    return share;
  }

  /**
   * Encodes each result of the source once and writes it to every member's socket; ends them when
   * the source ends. A member whose socket is too far behind ends with SUBSCRIPTION_OVERFLOW.
   */
  private async pump(share: Share, source: AsyncIterator<ExecutionResult>): Promise<void> {
    try {
      for (;;) {
        const next = await source.next();
        if (next.done) break;
        this.hooks.resultComputed();
        // GraphQLErrors encode through their toJSON, as graphql-ws would send them.
        const payload = JSON.stringify(next.value);
        for (const member of share.members) {
          if (member.deliver(payload, this.maxBufferedBytes)) continue;
          member.end(coded(overflow(this.maxBufferedBytes)));
          this.release(share, member);
        }
        // The last one fell behind: nobody is left to compute for (finally stops the source).
        if (share.members.size === 0) return;
      }
      for (const member of share.members) member.end();
    } catch (error) {
      for (const member of share.members) member.end(coded(error));
    } finally {
      for (const member of share.members) this.release(share, member);
      this.end(share);
    }
  }

  /** A member unsubscribed (graphql-ws `complete`, its socket closed): the others go on. */
  private leave(share: Share, member: Member): void {
    member.end();
    this.release(share, member);
    if (share.members.size === 0) this.end(share);
  }

  private release(share: Share, member: Member): void {
    if (share.members.delete(member) && member.counted) this.hooks.subscriberEnded();
  }

  /** Stops the source (once it exists) and forgets the share: the next subscriber starts anew. */
  private end(share: Share): void {
    this.forget(share);
    // Still starting (no source yet): `open` ends it once started. Ended already: nothing to do.
    if (!share.source || share.ended.signal.aborted) return;
    share.ended.abort();
    this.hooks.streamEnded();
    // The pump's pending read then ends too.
    void share.source.return?.();
  }

  private forget(share: Share): void {
    if (this.shares.get(share.key) === share) this.shares.delete(share.key);
  }
}

/**
 * graphql-ws sends what a stream throws as a GraphQL error with its message and the `extensions` of
 * the error thrown: a CasError goes as the coded error clients get everywhere else.
 */
const coded = (error: unknown) => (isCasError(error) ? fromCasError(error) : error);

const overflow = (bytes: number) =>
  new CasError(
    ErrorCode.SUBSCRIPTION_OVERFLOW,
    `subscriber fell more than ${bytes} bytes behind; resume with the last cursor received`,
  );
