// A hostile-input corpus, generated deterministically from a seed: malformed and mistyped
// bodies, huge and deeply nested JSON, odd Unicode in every field, traversal in paths, bad tokens,
// headers, query parameters and methods. Every answer is below 500, every refusal is in the one
// documented error shape, nothing secret leaks, and the server keeps serving. The bad values of
// deployment columns are then written by SQL, as a pipeline would: a constraint that names itself
// refuses each.
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type ApiResponse, type Harness } from './harness.ts';

const SEED = 0x6b65656c;
let h: Harness;
let admin: string;
let promote: string;
let repoId: string;

/** mulberry32: a small deterministic PRNG, so a failure reproduces with the same corpus. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(async () => {
  h = await startHarness({ opsRepos: { fetch: async () => ({ sha: 'c'.repeat(40), fetched: true }) } });
  admin = await h.token(['admin'], null, 'fuzz-admin');
  promote = await h.token(['deploy:read', 'deploy:promote'], 'shop', 'fuzz-shop');
  repoId = (await h.pg.query(`insert into ops_repos (name, repo_url, webhook_secret) values ('ops', 'https://git.example/o.git', 'fuzz-webhook-secret-0123456789') returning id`)).rows[0].id;
  await h.insertDeployment('shop', 'staging');
});

afterAll(async () => {
  await h.close();
});

// ---- the corpus ---------------------------------------------------------------------------

const ODD_STRINGS = [
  '', ' ', 'a\u0000b', '\u0000', 'x\u200by', '\u200e', 'a\u202eb', '\u2066x\u2069', 'a\u00a0b', '\ufeffx', 'line\nbreak', 'cr\rx', 'tab\tx',
  '\u2028', '\u2029', '\ud800', 'x\udfffy', '😀', 'é', 'Ｓｈｏｐ', '../../etc/passwd', '..', '/etc/passwd', 'C:\\Windows', '%00', '%2e%2e%2f',
  '--upload-pack=touch /tmp/x', '-x', 'ext::sh -c id', '${jndi:ldap://x}', '{{ 7*7 }}', "'; drop table deployments; --", '<script>', 'a'.repeat(64),
  'a'.repeat(1025), 'a'.repeat(70_000), '\u0001\u0002\u0003', 'main.lock', 'HEAD', '@{1}', 'x~1', 'a..b', 'refs/heads/../x', '\\', 'null', 'true', '1e309',
];
const ODD_VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, [], [1], {}, { a: 1 }, [[[]]], ...ODD_STRINGS.slice(0, 12)];

const nest = (depth: number, leaf: unknown = 1): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 3 === 0 ? [value] : { n: value };
  return value;
};

interface Probe {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  readonly token?: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** A deployments column and the value sent in it (for the SQL door). */
  readonly column?: string;
  readonly value?: unknown;
}

const CREATE_FIELDS = ['environment', 'image_ref', 'desired_status', 'values_override', 'ops_repo', 'ops_repo_id', 'manifest_path', 'namespace', 'auto_rollback'];
const DEPLOYMENT_COLUMNS = new Set(['environment', 'image_ref', 'desired_status', 'values_override', 'manifest_path', 'namespace']);

function corpus(): Probe[] {
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const probes: Probe[] = [];
  const D = '/api/projects/shop/deployments';
  const base = () => ({ environment: `f${Math.floor(random() * 1e9)}`, image_ref: 'registry.example/shop:1' });

  // every create field × odd strings and values
  for (const field of CREATE_FIELDS) {
    for (const value of [...ODD_STRINGS, ...ODD_VALUES]) {
      probes.push({ label: `create ${field}=${JSON.stringify(value).slice(0, 30)}`, method: 'POST', path: D, token: promote, body: { ...base(), [field]: value }, column: field, value });
    }
  }
  // patch fields, ops repo and project admin fields × a random sample of odd values
  for (const field of ['image_ref', 'desired_status', 'values_override', 'auto_rollback', 'namespace']) {
    for (let i = 0; i < 12; i++) probes.push({ label: `patch ${field}`, method: 'PATCH', path: `${D}/staging`, token: promote, body: { [field]: pick([...ODD_STRINGS, ...ODD_VALUES]) } });
  }
  for (const field of ['name', 'repo_url', 'branch', 'path', 'sync_interval_s', 'webhook_secret']) {
    for (let i = 0; i < 10; i++) {
      probes.push({ label: `ops repo ${field}`, method: 'POST', path: '/api/admin/ops-repos', token: admin, body: { name: `r${i}`, repo_url: 'https://git.example/r.git', [field]: pick([...ODD_STRINGS, ...ODD_VALUES]) } });
    }
  }
  for (const field of ['name', 'description', 'namespaces', 'source_repos', 'manifest_paths', 'namespace_resource_whitelist', 'cluster_resource_whitelist', 'allow_adoption']) {
    for (let i = 0; i < 8; i++) {
      const odd = pick([...ODD_STRINGS, ...ODD_VALUES]);
      probes.push({ label: `project ${field}`, method: 'POST', path: '/api/admin/projects', token: admin, body: { name: `p${i}`, [field]: i % 2 ? [odd] : odd } });
    }
  }
  // deep and huge JSON (written as text: JSON.stringify itself would overflow the stack)
  const deep = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
  for (const depth of [33, 40, 41, 100, 1000, 10_000, 100_000]) {
    const json = 'application/json';
    probes.push({
      label: `values nested ${depth}`, method: 'POST', path: D, token: promote, headers: { 'content-type': json },
      body: `{"environment":"deep${depth}","image_ref":"x:1","values_override":{"v":${deep(depth)}}}`,
      column: 'values_override', value: depth <= 100 ? { v: nest(depth) } : undefined,
    });
    probes.push({ label: `body nested ${depth}`, method: 'PATCH', path: `${D}/staging`, token: promote, headers: { 'content-type': json }, body: `{"values_override":${deep(depth)}}` });
    probes.push({ label: `object nested ${depth}`, method: 'POST', path: '/api/admin/projects', token: admin, headers: { 'content-type': json }, body: `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` });
  }
  probes.push({ label: 'values 300 KiB', method: 'POST', path: D, token: promote, body: { ...base(), values_override: { big: 'x'.repeat(300 * 1024) } }, column: 'values_override', value: { big: 'x'.repeat(300 * 1024) } });
  probes.push({ label: 'body over 1 MB', method: 'POST', path: D, token: promote, body: { ...base(), values_override: { big: 'x'.repeat(1_100_000) } } });
  probes.push({ label: 'many keys', method: 'POST', path: D, token: promote, body: { ...base(), values_override: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])) } });
  // malformed bodies
  for (const raw of ['{', '{"environment":', 'null', '[]', '"x"', '42', 'true', '{"a":1}{"b":2}', '\u0000', '{"environment":"x","environment":"y","image_ref":"x:1"}', ' ', '{"image_ref":"\\ud800"}', '{"__proto__":{"admin":true},"environment":"x","image_ref":"x:1"}']) {
    probes.push({ label: `malformed ${JSON.stringify(raw)}`, method: 'POST', path: D, token: promote, body: raw, headers: { 'content-type': 'application/json' } });
  }
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data; boundary=x']) {
    probes.push({ label: `content-type ${type}`, method: 'POST', path: D, token: promote, body: JSON.stringify(base()), headers: { 'content-type': type } });
  }
  // traversal and odd paths
  for (const path of [
    '/api/projects/..%2f..%2fetc/deployments', '/api/projects/%2e%2e/deployments', '/api/projects/shop/deployments/%2e%2e%2f%2e%2e', '/api/projects/shop%00/deployments',
    '/api/projects/shop/deployments/staging%00', '/api/projects/SHOP/deployments', `/api/projects/${'a'.repeat(5000)}/deployments`, '//api/deployments', '/api/deployments/',
    '/api/projects/shop/deployments/staging/../../../../admin/ops-repos', '/api/admin/ops-repos/..%2f', `/api/admin/ops-repos/${repoId}%00`, '/api/admin/projects/%E2%80%AEshop',
    '/api/projects/%F0%9F%98%80/policy', '/api/projects/shop/deployments/staging/events/../snapshot', '/%', '/api/%zz', '/api/projects/shop/deployments/%ff',
  ]) {
    probes.push({ label: `path ${path.slice(0, 60)}`, method: 'GET', path, token: admin });
  }
  // query parameters
  for (const query of ['project[]=zzz', 'project=a&project=b', 'project=', 'unknown=1', 'project=%00', 'limit=1e3', 'limit=-1', 'limit=99999999999999999999', 'before=9223372036854775808', 'before=0x10', 'limit[$gt]=1']) {
    probes.push({ label: `query ${query}`, method: 'GET', path: `/api/deployments?${query}`, token: admin });
    probes.push({ label: `history query ${query}`, method: 'GET', path: `${D}/staging/history?${query}`, token: admin });
  }
  for (const id of ['9223372036854775808', '18446744073709551616', '-1', '1.5', '1e3', '1 2', '0x10', '9007199254740993']) {
    probes.push({ label: `Last-Event-ID ${id}`, method: 'GET', path: `${D}/staging/events`, token: admin, headers: { 'last-event-id': id } });
    probes.push({ label: `last_event_id ${id}`, method: 'GET', path: `${D}/staging/events?last_event_id=${encodeURIComponent(id)}`, token: admin });
  }
  // tokens and headers
  for (const authorization of ['', 'Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', `Bearer ${admin} ${admin}`, `Bearer ${admin.slice(0, -1)}`, `bearer ${'A'.repeat(10_000)}`, 'Bearer kls_', `Bearer kls_${'-'.repeat(43)}`, 'Bearer %00']) {
    probes.push({ label: `authorization ${authorization.slice(0, 20)}`, method: 'GET', path: '/api/deployments', headers: { authorization } });
  }
  for (const key of ['', ' ', 'k'.repeat(256), 'ключ', 'a b', 'x\ty']) {
    probes.push({ label: `idempotency key ${key.slice(0, 10)}`, method: 'PATCH', path: `${D}/staging`, token: promote, body: { auto_rollback: false }, headers: { 'idempotency-key': key } });
  }
  for (const ifMatch of ['', '"', 'W/', '*,*', `"${'x'.repeat(5000)}"`, 'garbage']) {
    probes.push({ label: `if-match ${ifMatch.slice(0, 10)}`, method: 'PATCH', path: `${D}/staging`, token: promote, body: { auto_rollback: false }, headers: { 'if-match': ifMatch } });
  }
  // methods
  for (const method of ['PUT', 'DELETE', 'PATCH', 'POST']) {
    for (const path of ['/api/deployments', '/healthz', '/api/machine', `${D}/staging/history`, '/api/admin/projects/shop/x']) probes.push({ label: `${method} ${path}`, method, path, token: admin });
  }
  // the webhook without, and with broken, signatures
  for (const signature of ['', 'sha256=', `sha256=${'0'.repeat(64)}`, 'sha1=abc', 'sha256=zz'.repeat(20)]) {
    probes.push({ label: `webhook ${signature.slice(0, 12)}`, method: 'POST', path: `/api/hooks/ops-repos/${repoId}`, body: '{"ref":"refs/heads/main"}', headers: { 'x-hub-signature-256': signature } });
  }
  return probes;
}

// ---- raw HTTP, for what fetch refuses to send ------------------------------------------------

async function raw(text: string): Promise<{ status: number; body: string }> {
  const socket = net.connect(Number(new URL(h.baseUrl).port), '127.0.0.1');
  await once(socket, 'connect');
  socket.write(text);
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  await once(socket, 'close');
  h.responses.push(received);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0);
  return { status, body: received.slice(received.indexOf('\r\n\r\n') + 4) };
}

const RAW_REQUESTS = (token: string) => [
  `GET /api/deployments HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
  `GET /api/deployments HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer ${token}\r\nauthorization: Basic eDp5\r\nConnection: close\r\n\r\n`,
  `GET /api/deployments HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer \u00e9\u00e9\r\nConnection: close\r\n\r\n`,
  `GET /api/deployments HTTP/1.1\r\nHost: k\r\nX-Long: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`,
  `GET /api/deployments HTTP/1.1\r\nHost: k\r\nBad Header: x\r\nConnection: close\r\n\r\n`,
  'GARBAGE\r\n\r\n',
  `POST /api/projects/shop/deployments HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\n{}`,
  `GET /api/deployments?project=%%% HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
  `GET /api/projects/shop/deployments/staging/events HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer ${token}\r\nLast-Event-ID: 1\r\nLast-Event-ID: 2\r\nConnection: close\r\n\r\n`,
  `TRACE /api/deployments HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n`,
];

// ---- checks ---------------------------------------------------------------------------------

function checkShape(label: string, status: number, text: string): void {
  expect(status, label).toBeLessThan(500);
  expect(status, label).toBeGreaterThanOrEqual(100);
  if (status < 400) return;
  let body: { error?: { code?: unknown; message?: unknown; details?: unknown } };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${label}: a ${status} without a JSON body: ${text.slice(0, 200)}`);
  }
  expect(Object.keys(body), label).toEqual(['error']);
  expect(typeof body.error?.code, label).toBe('string');
  expect(body.error?.message, label).toMatch(/\S.*[.)]$/s);
  if (body.error?.details !== undefined) {
    expect(Array.isArray(body.error.details), label).toBe(true);
    for (const detail of body.error.details as unknown[]) expect(Object.keys(detail as object).sort(), label).toEqual(['field', 'message']);
  }
}

describe('hostile requests', () => {
  const refusedColumns: Array<[string, unknown]> = [];

  it(`a corpus of generated requests (seed ${SEED}) gets no 5xx, only the documented error shape, and leaks nothing`, async () => {
    const probes = corpus();
    expect(probes.length).toBeGreaterThanOrEqual(500);
    const statuses = new Map<number, number>();
    for (const probe of probes) {
      let response: ApiResponse;
      try {
        response = await h.request(probe.method, probe.path, { token: probe.token, body: probe.body, headers: probe.headers });
      } catch (error) {
        // fetch itself refuses some header values (a NUL, a non-Latin-1 byte): nothing was sent
        if (error instanceof TypeError) continue;
        throw error;
      }
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      checkShape(probe.label, response.status, response.text);
      if (response.status === 400 && probe.column && DEPLOYMENT_COLUMNS.has(probe.column) && probe.value !== undefined) {
        const fields = (response.body.error.details ?? []).map((d: { field: string }) => d.field);
        if (fields.includes(probe.column)) refusedColumns.push([probe.column, probe.value]);
      }
    }
    for (const text of RAW_REQUESTS(admin)) {
      const response = await raw(text);
      checkShape(`raw ${text.slice(0, 40)}`, response.status, response.body);
    }
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    // the corpus is mostly refusals, and they come in the documented variety
    expect((statuses.get(400) ?? 0) + (statuses.get(413) ?? 0)).toBeGreaterThan(300);
    expect(statuses.get(405)).toBeGreaterThan(10);
    expect(statuses.get(401)).toBeGreaterThan(5);
    // the server still serves, and nothing secret reached a response or a log line
    expect((await h.request('GET', '/healthz')).status).toBe(200);
    const password = new URL(h.t.url).password;
    expect(h.leaks([admin, promote, 'fuzz-webhook-secret-0123456789', ...(password ? [`:${password}@`] : [])])).toEqual([]);
    for (const line of h.responses) expect(line).not.toMatch(/\n\s+at .+\(.*:\d+:\d+\)|node_modules|\/src\/api\//);
    expect(await h.pg.query("select 1 from deployments where namespace is not null or project <> 'shop'").then((r) => r.rows)).toEqual([]);
  }, 300_000);

  it('the bad values of deployment columns, written by SQL, are refused by constraints that name themselves', async () => {
    // a lone surrogate cannot reach PostgreSQL by SQL at all (the driver encodes UTF-8)
    const textOrJson = refusedColumns.filter(([column, value]) =>
      column === 'values_override' ? value !== null && typeof value === 'object' && !Array.isArray(value) : typeof value === 'string' && value.isWellFormed());
    expect(textOrJson.length).toBeGreaterThan(40);
    for (const [column, value] of textOrJson) {
      const values: Record<string, unknown> = { project: 'shop', environment: 'sqldoor', image_ref: 'x:1', [column]: column === 'values_override' ? JSON.stringify(value) : value };
      const columns = Object.keys(values);
      let outcome = 'accepted';
      await h.pg.query('begin');
      try {
        await h.pg.query(`insert into deployments (${columns.join(', ')}) values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(values));
      } catch (error) {
        const e = error as { constraint?: string; code?: string };
        outcome = e.constraint ?? `sqlstate ${e.code}`;
      } finally {
        await h.pg.query('rollback');
      }
      // a NUL cannot be stored at all (22021/22P05); an odd Unicode escape is refused on input (22P02)
      expect([`${column}`, outcome], JSON.stringify(value).slice(0, 80)).toEqual([column, expect.stringMatching(new RegExp(`^deployments_${column}_|^sqlstate 22(021|P05|P02)$`))]);
    }
  });
});
