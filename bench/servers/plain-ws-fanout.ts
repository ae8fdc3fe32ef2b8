/**
 * The peer for the subscription rows: the least a Node.js server can do to push each event to its
 * subscribers. It speaks just enough graphql-ws (graphql-transport-ws: connection_init, subscribe,
 * complete, ping) for the benchmark's graphql-ws clients, LISTENs on the channel the CAS event log
 * rings (cas_feed), reads each announced event once and writes it, framed with each subscriber's
 * operation id, to every subscribed socket: no GraphQL execution, no authorization, no queues, no
 * quotas. What CAS spends beyond this on the same clients is its own; what both spend is the
 * machine's (a WebSocket write per subscriber, the clients' reads). DATABASE_URL, PORT, HOST.
 */
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';
import { eventCursor } from '../../src/domains/event/event.js';

const PROTOCOL = 'graphql-transport-ws';

/** Each socket's subscribed operations: id → the `next` message's text up to its payload. */
const subscriptions = new Map<WebSocket, Map<string, string>>();

const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
await db.connect();
db.on('notification', (notification) => {
  const notice = JSON.parse(notification.payload ?? '{}') as {
    kind?: string;
    lastSeq?: number;
    types?: string[];
  };
  // A state update appends its one event alone: the doorbell's last seq is that event.
  if (notice.kind === 'events' && notice.types?.includes('state_updated')) void broadcast(notice.lastSeq!);
});
await db.query('listen cas_feed');

const server = new WebSocketServer(
  {
    host: process.env.HOST ?? '127.0.0.1',
    port: Number(process.env.PORT),
    path: '/graphql',
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
  },
  () => console.log(`plain ws fan-out listening on ${process.env.PORT}`),
);

server.on('connection', (socket) => {
  const operations = new Map<string, string>();
  subscriptions.set(socket, operations);
  socket.on('close', () => subscriptions.delete(socket));
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { type: string; id?: string };
    if (message.type === 'connection_init') socket.send('{"type":"connection_ack"}');
    else if (message.type === 'ping') socket.send('{"type":"pong"}');
    else if (message.type === 'subscribe' && message.id)
      operations.set(message.id, `{"id":${JSON.stringify(message.id)},"type":"next","payload":`);
    else if (message.type === 'complete' && message.id) operations.delete(message.id);
  });
});

/** Reads event `seq` once and writes it to every subscriber. */
async function broadcast(seq: number): Promise<void> {
  const { rows } = await db.query<{ event_type: string; payload: unknown }>(
    "select event_type, payload from cas_agent_events where seq = $1 and event_type = 'state_updated'",
    [seq],
  );
  const event = rows[0];
  if (!event) return;
  const payload = JSON.stringify({
    data: { events: { cursor: eventCursor({ seq }), type: event.event_type, payload: event.payload } },
  });
  for (const [socket, operations] of subscriptions) {
    for (const prefix of operations.values()) socket.send(`${prefix}${payload}}`);
  }
}

process.on('SIGTERM', () => {
  server.close();
  void db.end().finally(() => process.exit(0));
});
