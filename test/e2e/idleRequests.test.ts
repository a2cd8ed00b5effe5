// What a healthy fleet costs the API server at rest (issue #13's proof; the fleet benchmark
// measures rollouts). 100 deployments (KEELSON_TEST_IDLE_FLEET=200 KEELSON_TEST_IDLE_CHECKS=300 for the ten minutes; the
// ramp-up is what grows, the steady state costs nothing either way) go healthy; then, over several drift intervals in which
// every deployment checks its release against the live objects (counted by keelson's
// keelson_drift_checks_total) and follows their health,
// keelson's requests are counted in the simulator's own request log: no LIST at all — the
// drift check and live health read the shared cluster cache, whose watches are the only
// standing cost — and no dry-run either, since nothing changed since keelson last compared.
// Nor does a check that finds its release in sync cost the database a statement.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sleepUntil } from '../helpers.ts';
import { startE2e, type E2e } from './support.ts';

const FLEET = Number(process.env.KEELSON_TEST_IDLE_FLEET ?? 100);
const DRIFT_INTERVAL_MS = 2_000;
/** drift checks each deployment must make inside the counted window (KEELSON_TEST_IDLE_CHECKS=300: ten minutes) */
const CHECKS = Number(process.env.KEELSON_TEST_IDLE_CHECKS ?? 3);

let e2e: E2e;

beforeAll(async () => {
  e2e = await startE2e({ sim: { requestLogSize: 200_000 } });
  await e2e.startRuntime({ tickIntervalMs: 250, machineConfig: { driftIntervalMs: DRIFT_INTERVAL_MS } });
});

afterAll(async () => {
  await e2e?.stop();
});

const settledHealthy = () =>
  e2e.db.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from deployments where current_status = 'healthy' and observed_generation = generation`);

/** Drift checks the runtime made so far, by outcome (keelson_drift_checks_total). */
async function driftChecks(): Promise<Record<string, number>> {
  const { values } = await e2e.metrics.driftChecks.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.outcome), v.value]));
}
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

describe(`${FLEET} healthy deployments at rest`, () => {
  it('cost the API server no LIST and no dry-run: drift checks and live health read the shared cache', { timeout: 300_000 + CHECKS * 3 * DRIFT_INTERVAL_MS }, async () => {
    await e2e.db.query(sql.unsafe`
      insert into deployments (project, environment, image_ref)
      select 'idle' || i, 'prod', 'registry.example/idle:1' from generate_series(1, ${FLEET}) as i`);
    const start = Date.now();
    await sleepUntil(async () => (await settledHealthy()) === FLEET, { timeoutMs: 180_000, intervalMs: 500, message: `${FLEET} deployments healthy` });
    const rampS = (Date.now() - start) / 1000;

    // the first check after a rollout may compare by dry-run (the objects' statuses moved since the apply)
    const warm = total(await driftChecks());
    // (two rounds, so each deployment's first check — which reads its row's drift policy — is behind)
    await sleepUntil(async () => total(await driftChecks()) - warm >= 2 * FLEET, { timeoutMs: 60_000, intervalMs: 250, message: 'a first round of drift checks' });

    const before = await driftChecks();
    const statementsBefore = e2e.effectStatements();
    const from = new Date();
    const evictedBefore = e2e.sim.requests.evicted;
    await sleepUntil(async () => total(await driftChecks()) - total(before) >= FLEET * CHECKS, { timeoutMs: 90_000 + CHECKS * 2 * DRIFT_INTERVAL_MS, intervalMs: 250, message: `${CHECKS} rounds of drift checks` });
    const seconds = (Date.now() - from.getTime()) / 1000;
    const after = await driftChecks();
    const statements = e2e.effectStatements() - statementsBefore;

    // the window was held whole by the ring
    expect(e2e.sim.requests.evicted).toBe(evictedBefore);
    const requests = e2e.sim.requests.records({ since: from.getTime() });
    const byVerb: Record<string, number> = {};
    for (const r of requests) {
      const verb = r.dryRun ? 'patch (dry-run)' : r.verb;
      byVerb[verb] = (byVerb[verb] ?? 0) + 1;
    }
    const checks = total(after) - total(before);
    console.log(`${FLEET} deployments healthy after ${rampS.toFixed(1)} s; then ${seconds.toFixed(1)} s at rest, ${checks} drift checks ${JSON.stringify(after)}: API requests ${JSON.stringify(byVerb)}, database statements of the effects ${statements}`);

    // every check found the release in sync, and found it from the cache
    expect((after.in_sync ?? 0) - (before.in_sync ?? 0)).toBe(checks);
    expect(byVerb.list ?? 0).toBe(0);
    expect(byVerb['patch (dry-run)'] ?? 0).toBe(0);
    // nothing but watches (re-established from their resourceVersion) may be asked for
    expect(Object.keys(byVerb).filter((verb) => verb !== 'watch')).toEqual([]);
    // the drift policy is read only when a check finds drift, or does not know the last finding
    expect(statements).toBe(0);
    // and the rows are still at rest: no check mistook the cache for drift
    expect(await settledHealthy()).toBe(FLEET);
    const repairs = await e2e.db.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from deployment_history where triggered_by like 'drift%'`);
    expect(repairs).toBe(0);
  });
});
