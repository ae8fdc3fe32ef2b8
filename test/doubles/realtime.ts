/**
 * A Supabase Realtime double: the Phoenix channel protocol realtime-js speaks, over a real
 * WebSocket at /realtime/v1/websocket, serving Broadcast (what the change feed uses).
 *
 * Frames follow Realtime's serializers: with vsn 2.0.0 (supabase-js's default) every text frame is
 * [join_ref, ref, topic, event, payload]; with vsn 1.0.0 it is an object with those keys.
 *   → [jr, r, "phoenix", "heartbeat", {}]                 ← [null, r, "phoenix", "phx_reply", {status: "ok", response: {}}]
 *   → [jr, r, "realtime:t", "phx_join", {config, access_token}]
 *                                                          ← [jr, r, "realtime:t", "phx_reply", {status: "ok", response: {postgres_changes: []}}]
 *   → [jr, r, "realtime:t", "access_token", {access_token}]
 *   → [jr, r, "realtime:t", "phx_leave", {}]              ← ok reply, then [jr, jr, "realtime:t", "phx_close", {}]
 *   ← [null, null, "realtime:t", "broadcast", {type: "broadcast", event, payload, meta: {id}}]
 *
 * Broadcasts come from the database as on Supabase: rows realtime.send inserts into
 * realtime.messages reach the double (over NOTIFY, see realtime-schema.ts, where Supabase reads the
 * WAL) and go to the sockets joined to that topic with the same privacy, as Realtime's
 * ReplicationConnection and BatchBroadcast send them. Private channels are joinable with the
 * service role key only (it bypasses the RLS policies Realtime checks).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Database, Unlisten } from '../../src/db/database.js';
import type { SupabaseKeys } from './postgrest.js';
import { REALTIME_WAL_CHANNEL } from './realtime-schema.js';

type Vsn = '1.0.0' | '2.0.0';

interface Frame {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

interface Joined {
  topic: string;
  joinRef: string | null;
  private: boolean;
}

interface Client {
  socket: WebSocket;
  vsn: Vsn;
  apikey: string;
  channels: Map<string, Joined>;
}

interface WalRow {
  id: string;
  topic: string;
  event: string;
  private: boolean;
  extension: string;
  payload: unknown;
}

export interface RealtimeDouble {
  /** Handles an upgrade to /realtime/v1/websocket; answers false for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Closes every connection abruptly, as a restart of Realtime would (clients reconnect). */
  dropConnections(): void;
  /** While true, new connections are refused (503), as during an outage. */
  refuseConnections: boolean;
  /** Frames received from clients, in order (decoded). */
  readonly received: Frame[];
  /** Broadcast frames sent to clients. */
  readonly delivered: Array<{ topic: string; event: string; payload: unknown }>;
  /** Sockets currently open. */
  connections(): number;
}

export function realtimeDouble(options: { db: Database; keys: SupabaseKeys }): RealtimeDouble {
  const { db, keys } = options;
  const wss = new WebSocketServer({ noServer: true });
  const clients = new Set<Client>();
  const received: Frame[] = [];
  const delivered: RealtimeDouble['delivered'] = [];
  let unlisten: Unlisten | null = null;

  const encode = (vsn: Vsn, frame: Frame): string =>
    vsn === '2.0.0'
      ? JSON.stringify([frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload])
      : JSON.stringify(frame);

  const decode = (vsn: Vsn, text: string): Frame | null => {
    try {
      const value = JSON.parse(text) as unknown;
      if (vsn === '2.0.0') {
        if (!Array.isArray(value) || value.length < 5) return null;
        const [join_ref, ref, topic, event, payload] = value as [
          string | null,
          string | null,
          string,
          string,
          Frame['payload'],
        ];
        return { join_ref, ref, topic, event, payload: payload ?? {} };
      }
      return value as Frame;
    } catch {
      return null;
    }
  };

  const push = (client: Client, frame: Frame) => {
    if (client.socket.readyState === client.socket.OPEN) client.socket.send(encode(client.vsn, frame));
  };
  const reply = (client: Client, frame: Frame, status: 'ok' | 'error', response: Record<string, unknown>) =>
    push(client, {
      join_ref: frame.join_ref,
      ref: frame.ref,
      topic: frame.topic,
      event: 'phx_reply',
      payload: { status, response },
    });

  const roleOf = (token: unknown) =>
    token === keys.serviceRole ? 'service_role' : token === keys.anon ? 'anon' : null;

  function onFrame(client: Client, frame: Frame) {
    received.push(frame);
    if (frame.topic === 'phoenix') {
      if (frame.event === 'heartbeat') reply(client, frame, 'ok', {});
      return;
    }
    const joined = client.channels.get(frame.topic);
    switch (frame.event) {
      case 'phx_join': {
        const subTopic = frame.topic.startsWith('realtime:') ? frame.topic.slice('realtime:'.length) : '';
        if (!subTopic) {
          reply(client, frame, 'error', { reason: 'TopicNameRequired: You must provide a topic name' });
          return;
        }
        const config = (frame.payload.config ?? {}) as { private?: boolean; postgres_changes?: unknown[] };
        const role = roleOf(frame.payload.access_token ?? client.apikey);
        if (!role) {
          reply(client, frame, 'error', { reason: 'JwtSignatureError: Failed to validate JWT signature' });
          return;
        }
        if (config.private && role !== 'service_role') {
          reply(client, frame, 'error', {
            reason: `Unauthorized: You do not have permissions to read from this Channel topic: ${subTopic}`,
          });
          return;
        }
        if ((config.postgres_changes ?? []).length > 0) {
          reply(client, frame, 'error', {
            reason: 'this double serves Broadcast only, not postgres_changes',
          });
          return;
        }
        client.channels.set(frame.topic, {
          topic: frame.topic,
          joinRef: frame.join_ref,
          private: Boolean(config.private),
        });
        reply(client, frame, 'ok', { postgres_changes: [] });
        return;
      }
      case 'phx_leave':
        if (!joined) break;
        client.channels.delete(frame.topic);
        reply(client, frame, 'ok', {});
        push(client, {
          join_ref: joined.joinRef,
          ref: joined.joinRef,
          topic: frame.topic,
          event: 'phx_close',
          payload: {},
        });
        return;
      case 'access_token':
        if (!joined) break;
        if (!roleOf(frame.payload.access_token)) {
          push(client, {
            join_ref: joined.joinRef,
            ref: null,
            topic: frame.topic,
            event: 'system',
            payload: {
              message: 'Invalid JWT Token',
              status: 'error',
              extension: 'system',
              channel: frame.topic.slice(9),
            },
          });
          client.channels.delete(frame.topic);
          push(client, {
            join_ref: joined.joinRef,
            ref: joined.joinRef,
            topic: frame.topic,
            event: 'phx_close',
            payload: {},
          });
        }
        return;
      case 'broadcast':
        // Clients of the change feed only listen; a client broadcast is accepted and not relayed.
        if (joined) {
          if (frame.ref) reply(client, frame, 'ok', {});
          return;
        }
        break;
      default:
        if (joined) return;
    }
    reply(client, frame, 'error', { reason: 'unmatched topic' });
  }

  function onWal(text: string) {
    const row = JSON.parse(text) as WalRow;
    if (row.extension !== 'broadcast') return;
    const topic = `realtime:${row.topic}`;
    const payload = { type: 'broadcast', event: row.event, payload: row.payload, meta: { id: row.id } };
    for (const client of clients) {
      const joined = client.channels.get(topic);
      if (!joined || joined.private !== Boolean(row.private)) continue;
      push(client, { join_ref: null, ref: null, topic, event: 'broadcast', payload });
      delivered.push({ topic, event: row.event, payload: row.payload });
    }
  }

  const double: RealtimeDouble = {
    refuseConnections: false,
    received,
    delivered,
    connections: () => clients.size,
    handleUpgrade(req, socket, head) {
      const url = new URL(req.url ?? '/', 'http://double');
      if (url.pathname !== '/realtime/v1/websocket') return false;
      if (double.refuseConnections) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return true;
      }
      const apikey = url.searchParams.get('apikey') ?? '';
      const vsn = (url.searchParams.get('vsn') ?? '1.0.0') as Vsn;
      // Realtime's socket refuses unknown keys and serializers before upgrading.
      if (!roleOf(apikey) || !['1.0.0', '2.0.0'].includes(vsn)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const client: Client = { socket: ws, vsn, apikey, channels: new Map() };
        clients.add(client);
        ws.on('message', (data, isBinary) => {
          if (isBinary) return; // user broadcast pushes; the feed never sends them
          const frame = decode(vsn, data.toString());
          if (frame) onFrame(client, frame);
        });
        ws.on('close', () => clients.delete(client));
        ws.on('error', () => clients.delete(client));
      });
      return true;
    },
    async start() {
      unlisten ??= await db.listen(REALTIME_WAL_CHANNEL, onWal);
    },
    async stop() {
      for (const client of clients) client.socket.terminate();
      clients.clear();
      const stop = unlisten;
      unlisten = null;
      await stop?.();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
    dropConnections() {
      for (const client of clients) client.socket.terminate();
      clients.clear();
    },
  };
  return double;
}
