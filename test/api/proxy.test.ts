// Behind a reverse proxy the audit log records the client, but only when the proxy is trusted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.ts';

let trusting: Harness;
let plain: Harness;

beforeAll(async () => {
  [trusting, plain] = await Promise.all([startHarness({ trustProxy: 'loopback' }), startHarness()]);
});

afterAll(async () => {
  await Promise.all([trusting.close(), plain.close()]);
});

async function auditedIp(h: Harness): Promise<string | null> {
  const token = await h.token(['deploy:read', 'deploy:promote']);
  const response = await h.request('POST', '/api/projects/shop/deployments', {
    token,
    body: { environment: 'prod', image_ref: 'registry.example/shop:1' },
    headers: { 'x-forwarded-for': '203.0.113.7' },
  });
  expect(response.status).toBe(202);
  const { rows } = await h.pg.query(`select ip from audit_log where action = 'deployment.create' order by id desc limit 1`);
  return rows[0]?.ip ?? null;
}

describe('trust proxy', () => {
  it('records the forwarded client when the proxy is trusted', async () => {
    expect(await auditedIp(trusting)).toBe('203.0.113.7');
  });

  it('ignores X-Forwarded-For by default, which any client could forge', async () => {
    expect(await auditedIp(plain)).toMatch(/127\.0\.0\.1/);
  });
});
