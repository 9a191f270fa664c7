import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { DriverServer, newToken, type DriverConnection } from '../../core/src/coordinator/driverChannel';
import { PROTOCOL_VERSION } from '../../core/src/protocol/common';

function exchange(port: number, lines: string[]): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', () => resolve(received));
    socket.on('connect', () => {
      socket.write(lines.join('\n') + '\n');
      setTimeout(() => socket.end(), 300);
    });
  });
}

const hello = (token: string): string =>
  JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, token, pid: 1, python: '3.11', versions: {} });
const injected = JSON.stringify({ type: 'trials', study: 's', trials: [{ tid: 1, spec: 'AA==', vals: { x: [1] }, params: { x: 1 } }] });

test('a process without the token cannot inject trials: the socket is closed unanswered', async () => {
  const server = new DriverServer(newToken());
  const connections: DriverConnection[] = [];
  const rejections: string[] = [];
  server.connections.on((c) => connections.push(c));
  server.rejected.on((why) => rejections.push(why));
  const port = await server.listen();
  try {
    assert.equal(await exchange(port, [hello(newToken()), injected]), '');
    assert.equal(await exchange(port, [injected]), '');
    assert.equal(await exchange(port, ['not json at all']), '');
    assert.equal(connections.length, 0);
    assert.deepEqual(rejections.map((r) => r.split(':')[0]), ['wrong token', 'bad hello', 'bad hello']);
  } finally {
    server.close();
  }
});

test('the token holder is welcomed and its messages arrive typed, including ones sent with the hello', async () => {
  const token = newToken();
  const server = new DriverServer(token);
  const messages: string[] = [];
  server.connections.on((c) => c.events.on((e) => messages.push(e.type === 'message' ? e.message.type : e.type)));
  const port = await server.listen();
  try {
    const reply = await exchange(port, [hello(token), injected]);
    assert.deepEqual(JSON.parse(reply.trim()), { type: 'welcome', protocol: PROTOCOL_VERSION });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(messages.slice(0, 1), ['trials']);
  } finally {
    server.close();
  }
});
