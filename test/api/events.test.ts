// SSE: transitions journaled by the runtime (row + pg_notify in one transaction) reach clients
// within a second; Last-Event-ID replays; heartbeats; close() ends the streams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleepUntil } from '../helpers.ts';
import { openSse, startHarness, type Harness, type SseStream } from './harness.ts';

let h: Harness;
let read: string;
let id: string;
const streams: SseStream[] = [];

beforeAll(async () => {
  h = await startHarness({ streamLimits: { heartbeatMs: 100 } });
  read = await h.token(['deploy:read'], null, 'viewer');
  id = await h.insertDeployment('shop', 'staging');
  await h.insertDeployment('shop', 'other');
});

afterAll(async () => {
  for (const s of streams) s.close();
  expect(h.leaks([read])).toEqual([]);
  await h.close();
});

async function open(path: string, headers: Record<string, string> = {}) {
  const stream = await openSse(h.baseUrl, path, read, headers);
  streams.push(stream);
  return stream;
}

describe('events', () => {
  it('delivers a journaled transition within a second, as event: transition with id: <seq>', async () => {
    const stream = await open('/api/projects/shop/deployments/staging/events');
    expect(stream.status).toBe(200);
    const other = await open('/api/projects/shop/deployments/other/events');
    const journaledAt = Date.now();
    await h.journal(id, 1, 'syncing', 'idle');
    const event = await sleepUntil(() => stream.events.find((e) => e.event === 'transition'), { timeoutMs: 5000 });
    const delay = event.receivedAt - journaledAt;
    expect(delay).toBeLessThan(1000);
    expect(event.id).toBe('1');
    expect(JSON.parse(event.data)).toMatchObject({ deployment_id: id, seq: 1, from_state: 'idle', to_state: 'syncing', event: 'deploy.requested' });
    // a second transition arrives too, in order, and the other deployment's stream sees none
    await h.journal(id, 2, 'applying', 'syncing');
    await sleepUntil(() => stream.events.filter((e) => e.event === 'transition').length === 2);
    expect(stream.events.filter((e) => e.event === 'transition').map((e) => e.id)).toEqual(['1', '2']);
    await sleepUntil(() => other.raw().includes(': heartbeat'));
    expect(other.events).toEqual([]);
  });

  it('replays transitions after Last-Event-ID, then continues live', async () => {
    const stream = await open('/api/projects/shop/deployments/staging/events', { 'last-event-id': '0' });
    await sleepUntil(() => stream.events.length === 2);
    expect(stream.events.map((e) => e.id)).toEqual(['1', '2']);
    await h.journal(id, 3, 'verifying', 'applying');
    await sleepUntil(() => stream.events.length === 3);
    expect(stream.events.map((e) => e.id)).toEqual(['1', '2', '3']);
    const fromQuery = await open('/api/projects/shop/deployments/staging/events?last_event_id=2');
    await sleepUntil(() => fromQuery.events.length === 1);
    expect(fromQuery.events[0]?.id).toBe('3');
  });

  it('sends heartbeat comments', async () => {
    const stream = await open('/api/projects/shop/deployments/staging/events');
    await sleepUntil(() => (stream.raw().match(/: heartbeat/g) ?? []).length >= 2);
    expect(stream.events).toEqual([]);
  });

  it('answers 404 for an unknown deployment and 400 for a bad Last-Event-ID', async () => {
    const missing = await open('/api/projects/shop/deployments/nope/events');
    expect(missing.status).toBe(404);
    const bad = await open('/api/projects/shop/deployments/staging/events', { 'last-event-id': 'abc' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.raw()).error.details[0].field).toBe('Last-Event-ID');
  });

  it('ends open streams on close()', async () => {
    const stream = await open('/api/projects/shop/deployments/staging/events');
    await sleepUntil(() => stream.raw().includes(': connected'));
    await h.api.close();
    await sleepUntil(() => stream.closed(), { message: 'stream still open after close()' });
    expect(stream.closed()).toBe(true);
  });
});
