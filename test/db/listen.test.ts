// The resilient LISTEN connection: it comes back after its connection is cut or its server
// freezes (no error, no answer: found by the probe), and says `connected` again each time.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createListener } from '../../src/db/listen.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';
import { startCutProxy } from '../runtime/support.ts';

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});

afterAll(async () => {
  await t.drop();
});

async function notify(channel: string, payload: string): Promise<void> {
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  try {
    await client.query('select pg_notify($1, $2)', [channel, payload]);
  } finally {
    await client.end();
  }
}

describe('resilient listener', () => {
  it.each(['cut', 'freeze'] as const)('reconnects after a %s of its connection and delivers again', async (fault) => {
    const proxy = await startCutProxy(t.url);
    const listener = createListener(proxy.url, ['test_channel'], { probeIntervalMs: 200, timeoutMs: 500, maxBackoffMs: 200 });
    try {
      const received: string[] = [];
      let connects = 0;
      let disconnects = 0;
      listener.events.on('notification', (_channel, payload) => received.push(payload));
      listener.events.on('connected', () => connects++);
      listener.events.on('disconnected', () => disconnects++);
      await listener.ready();
      await notify('test_channel', 'before');
      await sleepUntil(() => received.includes('before'), { message: 'first notification' });

      if (fault === 'cut') proxy.cut();
      else proxy.freeze();
      await sleepUntil(() => !listener.isConnected() && disconnects > 0, { message: `noticed the ${fault}` });
      proxy.heal();
      await sleepUntil(() => listener.isConnected() && connects >= 2, { message: 'connected again' });
      await notify('test_channel', 'after');
      await sleepUntil(() => received.includes('after'), { message: 'notification after reconnect' });
      expect(connects).toBeGreaterThanOrEqual(2);
    } finally {
      await listener.close();
      await proxy.close();
    }
  });

  it('closes at once while it cannot reach the server', async () => {
    const proxy = await startCutProxy(t.url);
    proxy.cut();
    const listener = createListener(proxy.url, ['test_channel'], { maxBackoffMs: 200 });
    const readiness = listener.ready().then(() => 'ready', () => 'rejected');
    await listener.close();
    expect(await readiness).toBe('rejected');
    expect(listener.isConnected()).toBe(false);
    await proxy.close();
  });
});
