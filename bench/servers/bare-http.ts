/**
 * The baseline: a bare node:http server that answers each known request body with the bytes the
 * GraphQL server answered it with (read from BENCH_RESPONSES, a JSON file of
 * { body, contentType, response }), after reading the request body as a real server must.
 * PORT and HOST as for the real server.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

interface Canned {
  body: string;
  contentType: string;
  response: string;
}

const canned: Canned[] = JSON.parse(readFileSync(process.env.BENCH_RESPONSES!, 'utf8')) as Canned[];
const answers = new Map(
  canned.map((entry) => [
    entry.body,
    { contentType: entry.contentType, bytes: Buffer.from(entry.response, 'utf8') },
  ]),
);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const answer = answers.get(Buffer.concat(chunks).toString('utf8'));
    if (req.method !== 'POST' || !answer) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('unknown request');
      return;
    }
    res.writeHead(200, { 'content-type': answer.contentType, 'content-length': answer.bytes.length });
    res.end(answer.bytes);
  });
});

server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1', () =>
  console.log(`bare http listening on ${process.env.PORT}`),
);
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
