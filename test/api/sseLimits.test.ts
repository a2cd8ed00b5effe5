// SSE resource limits: streams capped per token and overall (the next one is refused in the
// documented error shape), a client that never reads is disconnected once its queue passes the
// limit, and with every stream slot busy and the API's pool saturated, journal writes and lease
// heartbeats on the runtime's own pool keep their latency.
import { once } from 'node:events';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleepUntil } from '../helpers.ts';
import { openSse, startHarness, type Harness, type SseStream } from './harness.ts';

const open: SseStream[] = [];
afterAll(() => {
  for (const s of open) s.close();
});

async function sse(h: Harness, path: string, token: string): Promise<SseStream> {
  const stream = await openSse(h.baseUrl, path, token);
  open.push(stream);
  return stream;
}

async function metric(h: Harness, name: string): Promise<number> {
  const text = await (await fetch(`${h.baseUrl}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe('stream caps and slow consumers', () => {
  let h: Harness;
  let alice: string;
  let bob: string;
  let carol: string;

  beforeAll(async () => {
    h = await startHarness({ streamLimits: { perToken: 10, total: 12, maxBufferBytes: 64 * 1024, heartbeatMs: 50 } });
    alice = await h.token(['deploy:read'], null, 'alice');
    bob = await h.token(['deploy:read'], null, 'bob');
    carol = await h.token(['deploy:read'], null, 'carol');
    await h.insertDeployment('shop', 'staging');
    await h.insertDeployment('shop', 'slow');
  });

  afterAll(async () => {
    for (const s of open) s.close();
    await h.close();
  });

  it('the 11th stream of one token is refused with 429 in the error shape; closing one frees a slot', async () => {
    const mine: SseStream[] = [];
    for (let i = 0; i < 10; i++) {
      const stream = await sse(h, i % 2 ? '/api/events' : '/api/projects/shop/deployments/staging/events', alice);
      expect(stream.status).toBe(200);
      mine.push(stream);
    }
    const eleventh = await sse(h, '/api/projects/shop/deployments/staging/events', alice);
    expect(eleventh.status).toBe(429);
    expect(JSON.parse(eleventh.raw())).toEqual({ error: { code: 'too_many_streams', message: expect.stringMatching(/alice.*10 event streams.*\.$/) } });
    const viaAll = await sse(h, '/api/events', alice);
    expect(viaAll.status).toBe(429);
    // another token is not affected
    const other = await sse(h, '/api/events', bob);
    expect(other.status).toBe(200);
    mine[0]?.close();
    await sleepUntil(async () => (await sse(h, '/api/events', alice)).status === 200, { message: 'a slot of alice was freed' });
  });

  it('past the overall limit, every token is refused', async () => {
    // alice 10 + bob 1 = 11 of 12
    const twelfth = await sse(h, '/api/events', bob);
    expect(twelfth.status).toBe(200);
    const refused = await sse(h, '/api/events', carol);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.raw()).error.message).toMatch(/12 event streams open, its limit/);
    expect(await metric(h, 'keelson_sse_refused_total')).toBeGreaterThanOrEqual(3);
    for (const s of open) s.close();
    await sleepUntil(async () => (await metric(h, 'keelson_sse_streams')) === 0, { message: 'every stream released' });
  });

  it('a client that never reads is disconnected past the buffer limit; its slot is freed', async () => {
    const id = (await h.pg.query("select id from deployments where environment = 'slow'")).rows[0].id as string;
    const socket = net.connect((new URL(h.baseUrl).port as unknown as number), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET /api/projects/shop/deployments/slow/events HTTP/1.1\r\nHost: keelson\r\nAuthorization: Bearer ${carol}\r\nAccept: text/event-stream\r\n\r\n`);
    const [first] = (await once(socket, 'data')) as [Buffer];
    expect(first.toString()).toMatch(/^HTTP\/1\.1 200/);
    socket.pause(); // from now on it reads nothing
    expect(await metric(h, 'keelson_sse_streams')).toBe(1);
    // ~10 MB of events: more than the kernel's socket buffers and the 64 KiB limit
    await h.pg.query(
      `insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq)
       select $1, 'syncing', 'applying', 'deploy.requested', 1, s from generate_series(1, 40000) as s`,
      [id],
    );
    await h.pg.query(`select pg_notify('keelson_transitions', json_build_object('deployment_id', $1::uuid, 'seq', 40000)::text)`, [id]);
    await sleepUntil(async () => (await metric(h, 'keelson_sse_slow_disconnects_total')) >= 1, { timeoutMs: 30_000, message: 'the slow client was disconnected' });
    await sleepUntil(async () => (await metric(h, 'keelson_sse_streams')) === 0, { message: 'its slot was released' });
    socket.destroy();
    // a reading client of the same deployment replays everything from the table
    const reader = await sse(h, '/api/projects/shop/deployments/slow/events?last_event_id=39990', carol);
    await sleepUntil(() => reader.events.length === 10);
    expect(reader.events.map((e) => e.id)).toEqual(Array.from({ length: 10 }, (_, i) => String(39991 + i)));
  });
});

describe('two pools: API load does not reach the runtime', () => {
  let h: Harness;
  let probe: Worker;
  const STREAMS = 40;

  beforeAll(async () => {
    h = await startHarness({ streamLimits: { perToken: STREAMS, total: STREAMS } });
    const instanceId = '00000000-0000-4000-8000-000000000001';
    await h.pg.query(`insert into keelson_instances (id, hostname, pid) values ($1, 'test', 1)`, [instanceId]);
    const deploymentId = await h.insertDeployment('measured', 'prod');
    probe = new Worker(new URL('./fixtures/latencyProbe.ts', import.meta.url), { workerData: { url: h.t.url, deploymentId, instanceId } });
    await once(probe, 'message');
  });

  afterAll(async () => {
    for (const s of open) s.close();
    probe.postMessage('end');
    await once(probe, 'exit');
    await h.close();
  });

  async function samples(n: number): Promise<{ durations: number[]; maxWaiting: number }> {
    probe.postMessage({ samples: n });
    const [result] = (await once(probe, 'message')) as [{ durations: number[]; maxWaiting: number }];
    return result;
  }

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

  it('with every SSE slot busy and API reads queueing, journal writes and heartbeats keep their latency', async () => {
    const token = await h.token(['deploy:read'], null, 'viewer');
    const ids: string[] = [];
    for (let i = 0; i < STREAMS; i++) ids.push(await h.insertDeployment('load', `e${i}`));
    const quiet = await samples(21);

    for (let i = 0; i < STREAMS; i++) expect((await sse(h, `/api/projects/load/deployments/e${i}/events`, token)).status).toBe(200);
    expect((await sse(h, '/api/events', token)).status).toBe(429); // every slot is busy
    let loading = true;
    let apiWaited = 0;
    const watch = setInterval(() => {
      apiWaited = Math.max(apiWaited, h.t.db.state().waitingClients);
    }, 5);
    // readers keeping the API's pool (10 connections) queued, and transitions for every streamed
    // deployment every 25 ms, so every stream reads (written apart from the runtime's pool, as
    // other keelson processes would)
    const readers = Array.from({ length: 14 }, async (_, r) => {
      while (loading) await h.request('GET', `/api/projects/load/deployments/e${r}`, { token });
    });
    const writer = (async () => {
      let n = 0;
      while (loading) {
        n += 1;
        await h.pg.query(
          `with t as (insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq)
             select id, 'a', 'b', 'e', 1, $1 from unnest($2::uuid[]) as id returning deployment_id)
           select pg_notify('keelson_transitions', json_build_object('deployment_id', deployment_id, 'seq', $1)::text) from t`,
          [n, ids],
        );
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    await sleepUntil(() => apiWaited > 0, { message: "the API's pool is saturated" });
    const busy = await samples(21);
    loading = false;
    await Promise.all([...readers, writer]);
    clearInterval(watch);

    // the isolation itself: API requests queued for connections, the runtime's pool never did
    expect(apiWaited).toBeGreaterThan(0);
    expect(busy.maxWaiting).toBe(0);
    // every sample completed under load; the latency is a figure, not an assertion (the load
    // shares the machine's CPUs, so a bound on it would fail with the machine's load, not keelson's)
    expect(busy.durations).toHaveLength(21);
    const ratio = median(busy.durations) / median(quiet.durations);
    console.log(`journal+heartbeat median quiet ${median(quiet.durations).toFixed(1)} ms, busy ${median(busy.durations).toFixed(1)} ms (×${ratio.toFixed(1)})`);
  });
});
