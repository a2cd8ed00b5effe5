// Notifications end to end on real PostgreSQL: the runtime journals (gated effects), the outbox
// fans out, dispatchers deliver to a real HTTP receiver in this process, and the API shows it.
import { createHmac, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from '../../src/notify/dispatcher.ts';
import { StaleEpochError, writeJournal, type JournalEntry } from '../../src/runtime/journal.ts';
import { claim } from '../../src/runtime/leases.ts';
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts';
import { startHarness, type Harness } from '../api/harness.ts';
import { sleepUntil } from '../helpers.ts';
import { createGatedEffects, createGateTables, failEffect } from '../runtime/fixtures/gatedEffects.ts';
import { history, waitStatus } from '../runtime/support.ts';

const SECRET = 'whsec-0123456789-abcdefXYZ';
const log = createLogger({ level: 'silent', format: 'json' });

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly raw: string;
  readonly at: number;
}

let h: Harness;
let receiver: Server;
let rx: string;
const received: Received[] = [];
/** per path: what the receiver answers (status, status and headers, or 'hang'), request by request */
const behaviour = new Map<string, (n: number) => number | { status: number; headers: Record<string, string> } | 'hang'>();
const delays = new Map<string, number>();
const inFlightIds = new Map<string, number>();
/** requests that arrived while the same delivery was in flight */
let overlaps = 0;
const hanging: ServerResponse[] = [];
const dispatchers: Dispatcher[] = [];
let runtime: Runtime | undefined;

async function startRuntime(): Promise<void> {
  if (runtime) return;
  const instanceId = randomUUID();
  runtime = createRuntime({
    db: h.t.db,
    databaseUrl: h.t.url,
    log,
    instanceId,
    effects: createGatedEffects(h.t.db, instanceId),
    tickIntervalMs: 100,
    leaseTtlMs: 3000,
    machineConfig: { retryBaseMs: 50, retryMaxMs: 200 },
  });
  await runtime.start();
}

async function startDispatcher(options: Partial<DispatcherOptions> = {}): Promise<Dispatcher> {
  const dispatcher = createDispatcher({
    db: h.t.db,
    databaseUrl: h.t.url,
    log,
    instanceId: `dispatcher-${dispatchers.length + 1}`,
    retry: { baseMs: 100, maxMs: 1000, horizonMs: 60_000 },
    pollIntervalMs: 1000,
    ...options,
  });
  dispatchers.push(dispatcher);
  await dispatcher.start();
  return dispatcher;
}

async function stopDispatchers(): Promise<void> {
  await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
}

async function addSink(name: string, path: string, projects: string[], kind = 'webhook'): Promise<void> {
  await h.t.db.query(sql.unsafe`
    insert into notification_sinks (name, kind, url, secret, projects)
    values (${name}, ${kind}, ${`${rx}${path}`}, ${SECRET}, ${sql.array(projects, 'text')})`);
}

async function insertDeployment(project: string, autoRollback = false): Promise<string> {
  return await h.t.db.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into deployments (project, environment, image_ref, auto_rollback)
    values (${project}, 'prod', ${`registry.example/${project}:1`}, ${autoRollback}) returning id`);
}

const eventRows = (deploymentId: string) =>
  h.t.db.any(sql.type(z.object({ id: z.string(), type: z.string() }))`
    select id::text, type from deployment_events where deployment_id = ${deploymentId} order by position`);

const settled = async (deploymentId: string, count: number) =>
  await sleepUntil(
    async () => {
      const rows = await h.t.db.any(sql.type(z.object({ status: z.string() }))`
        select status from notification_deliveries where deployment_id = ${deploymentId}`);
      return rows.length >= count && rows.every((r) => r.status !== 'pending');
    },
    { timeoutMs: 20_000, message: `deliveries of ${deploymentId} settled` },
  );

const idsAt = (path: string) => received.filter((r) => r.path === path).map((r) => r.headers['x-keelson-event-id'] as string);

beforeAll(async () => {
  h = await startHarness();
  await createGateTables(h.t.db);
  const counts = new Map<string, number>();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      // one delivery = one event to one sink (path): sinks receive the same event in parallel
      const id = `${path} ${String(req.headers['x-keelson-event-id'])}`;
      const concurrent = inFlightIds.get(id) ?? 0;
      if (concurrent > 0) overlaps += 1;
      inFlightIds.set(id, concurrent + 1);
      received.push({ path, headers: req.headers, raw: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      const answer = behaviour.get(path)?.(n) ?? 204;
      const done = () => inFlightIds.set(id, (inFlightIds.get(id) ?? 1) - 1);
      if (answer === 'hang') {
        hanging.push(res);
        res.on('close', done);
        return;
      }
      setTimeout(() => {
        done();
        if (typeof answer === 'number') res.statusCode = answer;
        else res.writeHead(answer.status, answer.headers);
        res.end();
      }, delays.get(path) ?? 0);
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  rx = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await stopDispatchers();
  await runtime?.stop();
  for (const res of hanging) res.destroy();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await h.close();
});

describe('outbox', () => {
  it('writes no event for a fenced (stale-epoch) journal write, and the events of a write that passes the fence', async () => {
    const id = await insertDeployment('fence');
    const me = `test-${randomUUID()}`;
    const incarnation = randomUUID();
    const epoch = (await claim(h.t.db, me, incarnation, 60_000, { ids: [id] })).get(id) ?? 0;
    await claim(h.t.db, me, incarnation, 60_000, { ids: [id] }); // epoch + 1: the first actor is stale
    const entry = (e: number, seq: number): JournalEntry => ({
      deploymentId: id, instanceId: me, epoch: e, seq,
      snapshot: { status: 'active', value: 'idle', context: {} }, machineVersion: '2',
      state: 'syncing.fetching.running', status: 'syncing', transition: { from: 'idle', to: 'syncing.fetching.running', event: 'TEST' },
      generation: 1, observedGeneration: 0, completed: null, deployed: null, lastError: null,
      started: { actionId: '1-1-deploy', action: 'deploy', generation: 1, imageRef: 'registry.example/fence:1', triggeredBy: 'desired-state' },
    });
    await expect(writeJournal(h.t.db, entry(epoch, 1))).rejects.toBeInstanceOf(StaleEpochError);
    expect(await eventRows(id)).toEqual([]);
    await writeJournal(h.t.db, entry(epoch + 1, 1));
    expect((await eventRows(id)).map((e) => e.type)).toEqual(['deploy.started']);
    // leave nothing for the runtime started later
    await h.t.db.query(sql.unsafe`delete from deployments where id = ${id}`);
  });
});

describe('sinks API', () => {
  it('never returns, logs or audits a sink url path, secret or header value', async () => {
    const admin = await h.token(['admin']);
    const secrets = ['PATHTOKEN-abc123', 'QUERYKEY-xyz789', 'whsec-SECRET-0123456789', 'HEADERSECRET-42', 'NEWSECRET-9876543210'];
    const created = await h.request('POST', '/api/admin/sinks', {
      token: admin,
      body: {
        name: 'leaky', kind: 'webhook', url: 'https://hooks.example.com/PATHTOKEN-abc123?key=QUERYKEY-xyz789',
        secret: 'whsec-SECRET-0123456789', headers: { Authorization: 'Bearer HEADERSECRET-42' }, projects: ['nobody'], event_types: ['deploy.*'],
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'leaky', kind: 'webhook', url_host: 'https://hooks.example.com', has_secret: true, header_names: ['Authorization'] });
    const id = created.body.id as string;
    const list = await h.request('GET', '/api/admin/sinks', { token: admin });
    expect(list.body.items.map((s: { name: string }) => s.name)).toContain('leaky');
    await h.request('GET', `/api/admin/sinks/${id}`, { token: admin });
    const patched = await h.request('PATCH', `/api/admin/sinks/${id}`, {
      token: admin,
      body: { url: 'http://other.example:8080/NEWSECRET-9876543210', secret: 'NEWSECRET-9876543210' },
    });
    expect(patched.body).toMatchObject({ url_host: 'http://other.example:8080', has_secret: true });
    const slack = await h.request('POST', '/api/admin/sinks', {
      token: admin, body: { name: 'chat', kind: 'slack', url: 'https://hooks.slack.example/services/PATHTOKEN-abc123', projects: ['nobody'] },
    });
    expect(slack.body).toMatchObject({ url_host: 'https://hooks.slack.example', has_secret: false });
    for (const text of [created.text, list.text, patched.text, slack.text]) for (const s of secrets) expect(text).not.toContain(s);
    expect(h.leaks(secrets)).toEqual([]);
    const audit = await h.t.db.any(sql.type(z.object({ payload: z.unknown() }))`select payload from audit_log where action like 'sink.%'`);
    expect(audit.length).toBe(3);
    for (const s of secrets) expect(JSON.stringify(audit)).not.toContain(s);

    // the input rules: http(s) only, no credentials in the URL, a webhook is signed; SQL meets them too
    const bad = async (body: Record<string, unknown>) => (await h.request('POST', '/api/admin/sinks', { token: admin, body: { name: 'bad', kind: 'webhook', secret: 'x'.repeat(16), ...body } })).status;
    expect(await bad({ url: 'file:///etc/passwd' })).toBe(400);
    expect(await bad({ url: 'https://user:pw@hooks.example.com/' })).toBe(400);
    expect(await bad({ url: 'https://hooks.example.com/', secret: undefined })).toBe(400);
    expect(await bad({ url: 'https://hooks.example.com/', headers: { 'Content-Type': 'text/plain' } })).toBe(400);
    expect(await bad({ url: 'https://hooks.example.com/', event_types: ['deploy.exploded'] })).toBe(400);
    await expect(h.pg.query(`insert into notification_sinks (name, kind, url) values ('sql', 'slack', 'gopher://x')`)).rejects.toThrow(/notification_sinks_url_valid/);
    await expect(h.pg.query(`insert into notification_sinks (name, kind, url) values ('sql', 'slack', 'https://u:p@x.example/')`)).rejects.toThrow(/notification_sinks_url_valid/);
    await expect(h.pg.query(`insert into notification_sinks (name, kind, url) values ('sql', 'webhook', 'https://x.example/')`)).rejects.toThrow(/notification_sinks_webhook_signed/);
    // admin of one project only, or a reader: no sinks, no deliveries
    const scoped = await h.token(['admin'], 'shop');
    expect((await h.request('GET', '/api/admin/sinks', { token: scoped })).status).toBe(403);
    expect((await h.request('GET', '/api/admin/deliveries', { token: await h.token(['deploy:read']) })).status).toBe(403);
    expect((await h.request('GET', '/api/admin/deliveries?status=lost', { token: admin })).status).toBe(400);
    await h.request('DELETE', `/api/admin/sinks/${id}`, { token: admin });
    await h.request('DELETE', `/api/admin/sinks/${slack.body.id as string}`, { token: admin });
  });
});

describe('dispatcher', () => {
  it('delivers each event of a deploy and of a failed deploy with auto-rollback exactly once, in order, signed', async () => {
    await addSink('audit', '/audit', ['shop']);
    await addSink('chat', '/slack', ['shop'], 'slack');
    await addSink('catalog', '/registry', ['shop'], 'registry');
    await startRuntime();
    await startDispatcher();
    const id = await insertDeployment('shop', true);
    await waitStatus(h.t.db, id, 'healthy');
    await failEffect(h.t.db, id, 'verify', 'terminal', 1);
    await h.t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:2' where id = ${id}`);
    await sleepUntil(async () => (await history(h.t.db, id)).length === 3, { timeoutMs: 15_000, message: 'deploy, failed deploy, auto-rollback' });
    expect((await history(h.t.db, id)).map((r) => `${r.action}:${r.status}`)).toEqual(['deploy:succeeded', 'deploy:failed', 'auto-rollback:succeeded']);
    await settled(id, 6);
    const events = await eventRows(id);
    expect(events.map((e) => e.type)).toEqual(['deploy.started', 'deploy.succeeded', 'deploy.started', 'deploy.failed', 'rollback.started', 'rollback.succeeded']);
    // exactly once per event id, in the journal's order
    expect(idsAt('/audit')).toEqual(events.map((e) => e.id));
    for (const request of received.filter((r) => r.path === '/audit')) {
      const expected = `sha256=${createHmac('sha256', SECRET).update(request.raw).digest('hex')}`;
      expect(request.headers['x-keelson-signature-256']).toBe(expected);
      expect(request.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
      const body = JSON.parse(request.raw) as Record<string, unknown>;
      expect(body).toMatchObject({ specversion: '1.0', id: request.headers['x-keelson-event-id'], subject: 'shop/prod', source: '/api/projects/shop/deployments/prod', datacontenttype: 'application/json' });
      expect(Date.parse(body.time as string)).not.toBeNaN();
    }
    const failed = JSON.parse(received.find((r) => r.headers['x-keelson-event-id'] === events[3]?.id)?.raw ?? '{}') as { data: Record<string, unknown> };
    expect(failed.data).toMatchObject({ project: 'shop', environment: 'prod', outcome: 'failed', image_ref: 'registry.example/shop:2', error: 'verify failed on purpose (terminal)' });
    const rollback = JSON.parse(received.find((r) => r.headers['x-keelson-event-id'] === events[5]?.id)?.raw ?? '{}') as { data: Record<string, unknown> };
    expect(rollback.data).toMatchObject({ automatic: true, outcome: 'succeeded', image_ref: 'registry.example/shop:1' });
    // the same events as Slack messages, in order; the registry hears only of what now runs
    const slack = received.filter((r) => r.path === '/slack').map((r) => (JSON.parse(r.raw) as { text: string }).text.split('\n')[0]);
    expect(slack).toEqual([
      ':arrow_forward: *deploy started*: shop/prod', ':white_check_mark: *deploy succeeded*: shop/prod',
      ':arrow_forward: *deploy started*: shop/prod', ':x: *deploy failed*: shop/prod',
      ':arrow_forward: *auto-rollback started*: shop/prod', ':white_check_mark: *auto-rollback succeeded*: shop/prod',
    ]);
    expect(received.filter((r) => r.path === '/registry').map((r) => JSON.parse(r.raw) as unknown)).toEqual([
      { name: 'shop', version: '1', environment: 'prod', endpoint: 'http://shop.shop-prod.svc.cluster.local', rollback: false },
      { name: 'shop', version: '1', environment: 'prod', endpoint: 'http://shop.shop-prod.svc.cluster.local', rollback: true },
    ]);

    // a teardown: its start and end are delivered too, after everything before them, although
    // the deployment row is gone by then; the registry is told to forget the service
    await h.t.db.query(sql.unsafe`update deployments set desired_status = 'deleted' where id = ${id}`);
    await sleepUntil(async () => (await h.t.db.maybeOne(sql.unsafe`select id from deployments where id = ${id}`)) === null, { timeoutMs: 15_000, message: 'the row was not torn down' });
    await settled(id, 8 + 8 + 3); // audit and chat hear of every event, the registry of the three it acts on
    const all = await eventRows(id);
    expect(all.map((e) => e.type).slice(6)).toEqual(['teardown.started', 'teardown.succeeded']);
    expect(idsAt('/audit')).toEqual(all.map((e) => e.id));
    for (const request of received.filter((r) => r.path === '/audit').slice(6)) {
      expect(request.headers['x-keelson-signature-256']).toBe(`sha256=${createHmac('sha256', SECRET).update(request.raw).digest('hex')}`);
    }
    await sleepUntil(() => received.filter((r) => r.path === '/registry').length === 3, { message: 'the registry was not told of the teardown' });
    expect(JSON.parse(received.filter((r) => r.path === '/registry')[2]!.raw)).toEqual({ name: 'shop', environment: 'prod', deregister: true });
    await stopDispatchers();
  });

  it('retries a receiver answering 500 three times with growing, jittered backoff and delivers on the 4th try', async () => {
    behaviour.set('/flaky', (n) => (n <= 3 ? 500 : 200));
    await addSink('flaky', '/flaky', ['flaky']);
    await startRuntime();
    const metrics = createMetrics();
    await startDispatcher({ retry: { baseMs: 200, maxMs: 5000, horizonMs: 60_000 }, metrics });
    const id = await insertDeployment('flaky');
    await settled(id, 2);
    const counted = (await metrics.notifyAttempts.get()).values.map((v) => [v.labels.outcome, v.value]);
    expect(Object.fromEntries(counted)).toEqual({ retrying: 3, delivered: 2 });
    const [first, second] = await eventRows(id);
    // the second event waited for the first (order per deployment)
    expect(idsAt('/flaky')).toEqual([first?.id, first?.id, first?.id, first?.id, second?.id]);
    const attempts = await h.t.db.any(sql.type(z.object({ attempt: z.number(), status_code: z.number().nullable(), started_at: z.string() }))`
      select a.attempt, a.status_code, a.started_at from notification_attempts a
      join notification_deliveries d on d.id = a.delivery_id where d.event_id = ${first?.id ?? ''} order by a.attempt`);
    expect(attempts.map((a) => [a.attempt, a.status_code])).toEqual([[1, 500], [2, 500], [3, 500], [4, 200]]);
    const gaps = attempts.slice(1).map((a, i) => Date.parse(a.started_at) - Date.parse(attempts[i]!.started_at));
    console.log(`backoff gaps between attempts: ${gaps.join(', ')} ms (base 200 ms, equal jitter)`);
    // equal jitter: at least half of base·2^(n-1) each time
    expect(gaps[0]).toBeGreaterThanOrEqual(100);
    expect(gaps[1]).toBeGreaterThanOrEqual(200);
    expect(gaps[2]).toBeGreaterThanOrEqual(400);
    await stopDispatchers();
  });

  it('waits as long as a receiver answering 429 asks in Retry-After before trying again, then delivers', async () => {
    behaviour.set('/busy', (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : 200));
    await addSink('busy', '/busy', ['busy']);
    await startRuntime();
    // a 50 ms base: without Retry-After the second try would come within 50 ms
    await startDispatcher({ retry: { baseMs: 50, maxMs: 10_000, horizonMs: 60_000 } });
    const id = await insertDeployment('busy');
    await settled(id, 2);
    const [first] = await eventRows(id);
    const row = await h.t.db.one(sql.type(z.object({ status: z.string(), next_ms: z.number(), last_error: z.string().nullable() }))`
      select d.status, (extract(epoch from d.next_attempt_at) * 1000)::float8 as next_ms, d.last_error
      from notification_deliveries d join notification_sinks s on s.id = d.sink_id where s.name = 'busy' and d.event_id = ${first?.id ?? ''}`);
    const attempts = await h.t.db.any(sql.type(z.object({ attempt: z.number(), status_code: z.number().nullable(), error: z.string().nullable(), started_ms: z.number() }))`
      select a.attempt, a.status_code, a.error, (extract(epoch from a.started_at) * 1000)::float8 as started_ms from notification_attempts a
      join notification_deliveries d on d.id = a.delivery_id join notification_sinks s on s.id = d.sink_id
      where s.name = 'busy' and d.event_id = ${first?.id ?? ''} order by a.attempt`);
    expect(attempts.map((a) => [a.attempt, a.status_code, a.error])).toEqual([[1, 429, 'HTTP 429 (Retry-After 2 s)'], [2, 200, null]]);
    expect(row).toMatchObject({ status: 'delivered', last_error: null });
    // next_attempt_at, as the 429 left it (a delivered row keeps it): at least 2 s after that
    // attempt began; and the second attempt did not begin before it
    const [firstStarted, secondStarted] = attempts.map((a) => a.started_ms);
    console.log(`Retry-After 2: next attempt due ${row.next_ms - firstStarted!} ms after the 429'd attempt began; sent ${secondStarted! - firstStarted!} ms after`);
    expect(row.next_ms - firstStarted!).toBeGreaterThanOrEqual(2_000);
    expect(secondStarted).toBeGreaterThanOrEqual(Math.floor(row.next_ms));
    // and the receiver, by its own clock, was not asked again within the 2 s
    const arrivals = received.filter((r) => r.path === '/busy' && r.headers['x-keelson-event-id'] === first?.id).map((r) => r.at);
    expect(arrivals).toHaveLength(2);
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(2_000);
    await stopDispatchers();
  });

  it('marks a delivery to a receiver that never answers dead after the horizon, the last error visible in the API', async () => {
    behaviour.set('/hang', () => 'hang');
    await addSink('hang', '/hang', ['hang']);
    await startRuntime();
    await startDispatcher({ requestTimeoutMs: 300, retry: { baseMs: 100, maxMs: 400, horizonMs: 1500 } });
    const id = await insertDeployment('hang');
    await waitStatus(h.t.db, id, 'healthy');
    await settled(id, 2);
    const admin = await h.token(['admin']);
    const dead = await h.request('GET', '/api/admin/deliveries?status=dead', { token: admin });
    expect(dead.status).toBe(200);
    const mine = (dead.body.items as Array<{ sink: { name: string }; last_error: string; attempts: number; event: { type: string } }>).filter((d) => d.sink.name === 'hang');
    expect(mine.map((d) => d.event.type).sort()).toEqual(['deploy.started', 'deploy.succeeded']);
    for (const d of mine) expect(d.last_error).toBe('no response within 300 ms');
    expect(Math.max(...mine.map((d) => d.attempts))).toBeGreaterThanOrEqual(3);
    // and per deployment, with every attempt, for a deploy:read token of the project
    const reader = await h.token(['deploy:read'], 'hang');
    const events = await h.request('GET', '/api/projects/hang/deployments/prod/notifications', { token: reader });
    expect(events.status).toBe(200);
    const started = (events.body.items as Array<{ type: string; deliveries: Array<{ status: string; attempt_log: Array<{ error: string | null; status_code: number | null }> }> }>).find((e) => e.type === 'deploy.started');
    expect(started?.deliveries[0]?.status).toBe('dead');
    expect(started?.deliveries[0]?.attempt_log.every((a) => a.error === 'no response within 300 ms' && a.status_code === null)).toBe(true);
    const other = await h.token(['deploy:read'], 'shop');
    expect((await h.request('GET', '/api/projects/hang/deployments/prod/notifications', { token: other })).status).toBe(404);
    await stopDispatchers();
  });

  it('sends again once the claim of a dispatcher killed mid-request expires; the dead one cannot record', async () => {
    await addSink('orphan', '/orphan', ['orphan']);
    await startRuntime();
    const id = await insertDeployment('orphan');
    await sleepUntil(async () => (await eventRows(id)).length === 2, { message: 'deploy started and succeeded' });
    // a dispatcher claimed the first delivery and died before recording anything
    const killedToken = randomUUID();
    const first = await h.t.db.oneFirst(sql.type(z.object({ id: z.number() }))`
      update notification_deliveries set claim_token = ${killedToken}, claimed_until = now() + interval '700 milliseconds', attempts = 1
      where id = (select min(id) from notification_deliveries where deployment_id = ${id}) returning id`);
    const claimedAt = Date.now();
    await startDispatcher();
    await settled(id, 2);
    const [event1, event2] = await eventRows(id);
    expect(idsAt('/orphan')).toEqual([event1?.id, event2?.id]);
    const sentAt = received.find((r) => r.path === '/orphan')!.at;
    expect(sentAt - claimedAt).toBeGreaterThanOrEqual(600);
    const attempts = await h.t.db.any(sql.type(z.object({ attempt: z.number(), status_code: z.number().nullable() }))`
      select attempt, status_code from notification_attempts where delivery_id = ${first} order by attempt`);
    expect(attempts).toEqual([{ attempt: 2, status_code: 204 }]);
    // the killed dispatcher's late outcome finds its claim gone: nothing changes
    const late = await h.t.db.any(sql.unsafe`
      update notification_deliveries set status = 'dead' where id = ${first} and claim_token = ${killedToken} returning id`);
    expect(late).toHaveLength(0);
    await stopDispatchers();
  });

  it('with two dispatchers on one database, never sends the same delivery twice or concurrently', async () => {
    delays.set('/pair', 40);
    const projects = ['pair-a', 'pair-b', 'pair-c', 'pair-d', 'pair-e', 'pair-f'];
    await addSink('pair', '/pair', projects);
    await startRuntime();
    const one = await startDispatcher({ concurrency: 3 });
    const two = await startDispatcher({ concurrency: 3 });
    const ids = await Promise.all(projects.map((p) => insertDeployment(p)));
    for (const id of ids) await settled(id, 2);
    const all = received.filter((r) => r.path === '/pair').map((r) => r.headers['x-keelson-event-id'] as string);
    expect(all.length).toBe(12);
    expect(new Set(all).size).toBe(12);
    expect(overlaps).toBe(0);
    for (const id of ids) {
      const events = (await eventRows(id)).map((e) => e.id);
      expect(all.filter((x) => events.includes(x))).toEqual(events);
    }
    const attempts = await h.t.db.any(sql.type(z.object({ instance_id: z.string(), n: z.number() }))`
      select a.instance_id, count(*)::int as n from notification_attempts a join notification_deliveries d on d.id = a.delivery_id
      join notification_sinks s on s.id = d.sink_id where s.name = 'pair' group by a.instance_id`);
    expect(attempts.reduce((sum, a) => sum + a.n, 0)).toBe(12);
    console.log(`two dispatchers: ${attempts.map((a) => `${a.instance_id} sent ${a.n}`).join(', ')}; stats ${JSON.stringify([one.stats(), two.stats()])}`);
    await stopDispatchers();
  });
});
