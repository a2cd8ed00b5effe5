// The visualizer in real headless Chromium (Debian's /usr/bin/chromium through playwright-core)
// against a running keelson with the simulated cluster: the fleet shows a deployment inserted by
// SQL, its page follows a rollout live (syncing → applying → verifying → healthy without a
// reload), the default chart fits a 1400 px window and its compound states expand and collapse,
// the full chart draws every state and transition of GET /api/machine, a rollout that crash-loops
// leads the page with its error, pod and reason, time travel steps through the real journal from
// first to last and a deep link opens at its step, and the page needs nothing beyond localhost.
// Screenshots go to test-artifacts/ui/.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createToken } from '../../src/api/tokens.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer } from '../../src/server.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts/ui');
const ROLLOUT = ['syncing', 'applying', 'verifying', 'healthy'];

let t: TestDatabase;
let server: Awaited<ReturnType<typeof startServer>>;
let dataDir: string;
let profileDir: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let token: string;
const aborted: string[] = [];
const pageErrors: string[] = [];

const topOf = (state: string) => state.split('.')[0] ?? state;

/** Merges figures into test-artifacts/ui/figures.json (the fleet test writes there too). */
async function recordFigures(figures: Record<string, unknown>): Promise<void> {
  let existing: Record<string, unknown> = {};
  try {
    existing = JSON.parse(await readFile(path.join(ARTIFACTS, 'figures.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // first writer
  }
  await writeFile(path.join(ARTIFACTS, 'figures.json'), `${JSON.stringify({ ...existing, ...figures }, null, 2)}\n`);
}

beforeAll(async () => {
  t = await createTestDatabase();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'keelson-ui-data-'));
  profileDir = await mkdtemp(path.join(os.tmpdir(), 'keelson-ui-chromium-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const config = loadConfig({ DATABASE_URL: t.url, PORT: '0', KEELSON_DATA_DIR: dataDir, KEELSON_TICK_INTERVAL: '200ms', KEELSON_LOG_LEVEL: 'warn' }, {}, false);
  server = await startServer({
    config,
    log: createLogger({ level: 'warn', format: 'json' }),
    demo: false,
    // verifying waits for pods to become Ready: long enough for the page to show it
    simulator: { podStartupDelayMs: 1500, timeScale: 1 },
  });
  token = (await createToken(t.db, { name: 'ui-test', permissions: ['deploy:read'], project: null })).token;
  try {
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1600, height: 1000 },
    });
  } catch (error) {
    throw new Error(
      `Could not start Chromium at ${CHROMIUM} (install it with \`apt-get install -y chromium\`; npm test does this on fresh machines): ${(error as Error).message}`,
      { cause: error },
    );
  }
  browser = context.browser() as Browser;
  // anything but this server is refused: the page must need nothing external
  await context.route('**/*', async (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1' || host === 'localhost') await route.continue();
    else {
      aborted.push(route.request().url());
      await route.abort('blockedbyclient');
    }
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  void browser;
  await server?.close();
  await t?.drop();
  await rm(dataDir, { recursive: true, force: true });
  await rm(profileDir, { recursive: true, force: true });
});

async function signIn(): Promise<void> {
  await page.goto(`${server.url}/ui`);
  await page.locator('#token-input').fill(token);
  await page.locator('#token-form button[type=submit]').click();
  await page.locator('#deployments').waitFor();
}

describe('visualizer', () => {
  it('lists a deployment inserted by SQL and follows its state live', async () => {
    await signIn();
    expect(await page.evaluate(() => sessionStorage.getItem('keelson.token'))).toBe(token);
    await page.locator('#live[data-live="live"]').waitFor();
    await server.db.query(sql.unsafe`insert into deployments (project, environment, image_ref) values ('shop', 'staging', 'registry.example/shop:1.0.0')`);
    const row = page.locator('tr[data-deployment="shop/staging"]');
    await row.waitFor({ timeout: 15_000 });
    // no reload: the row reaches healthy through /api/events
    await page.locator('tr[data-deployment="shop/staging"][data-state="healthy"]').waitFor({ timeout: 30_000 });
    await expect(row.locator('.badge').textContent()).resolves.toBe('healthy');
    await page.screenshot({ path: path.join(ARTIFACTS, 'list.png'), fullPage: true });

    // the filters hide what does not match
    await page.locator('#filter-state').selectOption('failed');
    await sleepUntil(async () => (await row.count()) === 0, { message: 'the state filter did not hide the healthy row' });
    await page.locator('#filter-state').selectOption('');
    await row.waitFor();
  });

  it('draws the statechart and follows a rollout through syncing, applying, verifying to healthy', async () => {
    await page.locator('tr[data-deployment="shop/staging"] a').click();
    await page.locator('svg.statechart').waitFor();
    await sleepUntil(() => page.evaluate(() => document.body.dataset.currentTop === 'healthy'), { message: 'the page did not highlight healthy' });
    await page.locator('#live[data-live="live"]').waitFor();
    const before = await page.evaluate(() => (window as unknown as { __stateLog: string[] }).__stateLog.length);
    // lost if the page reloads
    await page.evaluate(() => {
      (window as unknown as { __noReload: boolean }).__noReload = true;
    });

    // a new image: the actor rolls out again while the page watches
    await server.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:2.0.0' where project = 'shop' and environment = 'staging'`);
    await sleepUntil(() => page.evaluate(() => document.body.dataset.currentTop === 'verifying'), { timeoutMs: 20_000, message: 'the page never highlighted verifying' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'deployment-verifying.png'), fullPage: true });
    await sleepUntil(
      () => page.evaluate(() => document.body.dataset.currentTop === 'healthy'),
      { timeoutMs: 30_000, message: 'the page never came back to healthy' },
    );
    const log = await page.evaluate(() => (window as unknown as { __stateLog: string[] }).__stateLog);
    const tops = log.slice(before).map(topOf);
    // in order, each at least once
    let at = 0;
    for (const state of ROLLOUT) {
      const found = tops.indexOf(state, at);
      expect(found, `highlighted states ${JSON.stringify(log.slice(before))} lack ${state} after position ${at}`).toBeGreaterThanOrEqual(at);
      at = found + 1;
    }
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);

    // the current state is highlighted and the last edge (done: verify → healthy; the first done
    // edge retires a revision, when going back to replace) marked
    await expect(page.locator('svg.statechart [data-state-id="deployment.healthy"]').getAttribute('class')).resolves.toMatch(/\bcurrent\b/);
    await expect(page.locator('svg.statechart').getAttribute('data-last-transition')).resolves.toBe('deployment.verifying.running|xstate.done.actor.verify|1');
    // the timeline, the history bars and the snapshot came along without a reload
    await sleepUntil(async () => (await page.locator('#history [data-action="deploy"]').count()) >= 2, { message: 'history did not show both deploys' });
    const phases = await page.locator('#history [data-action="deploy"]').first().locator('.bar-row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.phase));
    expect(phases).toEqual(['sync', 'render', 'apply', 'verify']);
    const timeline = await page.locator('#timeline tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.to));
    expect(timeline[0]).toBe('healthy');
    expect(timeline).toContain('verifying.running');
    await sleepUntil(async () => (await page.locator('#snapshot').textContent())?.includes('registry.example/shop:2.0.0'), { message: 'the snapshot JSON did not show the new image' });
    const snapshot = JSON.parse((await page.locator('#snapshot').textContent()) ?? 'null') as { value: unknown; context: { deployed: { imageRef: string } } };
    expect(snapshot.context.deployed.imageRef).toBe('registry.example/shop:2.0.0');
    await page.screenshot({ path: path.join(ARTIFACTS, 'deployment-healthy.png'), fullPage: true });
    // the whole chart at 100%, unclipped by its scroll box
    await page.setViewportSize({ width: 1600, height: 1000 });
    await page.getByRole('button', { name: '100%' }).click();
    const size = await page.evaluate(() => {
      const box = document.getElementById('chart') as HTMLElement;
      box.style.maxHeight = 'none';
      box.style.overflow = 'visible';
      const svg = box.querySelector('svg') as SVGSVGElement;
      return { width: Number(svg.getAttribute('width')), height: Number(svg.getAttribute('height')) };
    });
    await page.setViewportSize({ width: size.width + 80, height: 1000 });
    await page.locator('svg.statechart').screenshot({ path: path.join(ARTIFACTS, 'statechart.png') });
    await page.setViewportSize({ width: 1600, height: 1000 });
  });

  it('fits its default chart in a 1400 px window; compound states expand and collapse', async () => {
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.reload();
    await page.locator('body[data-deployment-ready="true"]').waitFor();
    const fit = await page.evaluate(() => {
      const box = document.getElementById('chart') as HTMLElement;
      const svg = box.querySelector('svg') as SVGSVGElement;
      const r = svg.getBoundingClientRect();
      return {
        right: r.right,
        width: r.width,
        naturalWidth: Number(svg.getAttribute('viewBox')?.split(' ')[2]),
        boxOverflow: box.scrollWidth - box.clientWidth,
        pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
        view: svg.dataset.view,
      };
    });
    expect(fit.view).toBe('readable');
    expect(fit.right).toBeLessThanOrEqual(1400);
    expect(fit.boxOverflow).toBeLessThanOrEqual(0);
    expect(fit.pageOverflow).toBeLessThanOrEqual(0);
    console.log(`readable statechart: ${fit.naturalWidth} px wide at 100 %, drawn ${Math.round(fit.width)} px in a 1400 px window`);
    await recordFigures({ readable_chart: { natural_width_px: fit.naturalWidth, drawn_width_px: Math.round(fit.width), window_px: 1400 } });
    // the ten top-level states and the "any state" pseudo-state; compound ones collapsed
    const drawn = await page.locator('svg.statechart [data-state-id]').evaluateAll((els) => els.map((e) => e.getAttribute('data-state-id')));
    expect(drawn.sort()).toEqual(['deployment', ...['idle', 'syncing', 'applying', 'verifying', 'healthy', 'failed', 'rolling-back', 'stopped', 'tearing-down', 'deleted'].map((k) => `deployment.${k}`)].sort());
    // syncing, applying, verifying, healthy, failed (idle / degraded), rolling-back, stopped, tearing-down
    expect(await page.locator('svg.statechart [data-collapsed="true"]').count()).toBe(8);
    // guards on hover, not as labels
    const labels = await page.locator('svg.statechart .edge-label text').allTextContents();
    expect(labels.some((l) => l.includes('['))).toBe(false);
    const hovers = await page.locator('svg.statechart .transition.bundle > title').allTextContents();
    expect(hovers.some((h) => h.includes('isNewerGeneration'))).toBe(true);
    await page.locator('svg.statechart').screenshot({ path: path.join(ARTIFACTS, 'statechart-readable.png') });

    await page.locator('svg.statechart [data-state-id="deployment.syncing"]').click();
    await page.locator('svg.statechart [data-state-id="deployment.syncing"][data-expanded="true"]').waitFor();
    await page.locator('svg.statechart [data-state-id="deployment.syncing.fetching"][data-collapsed="true"]').waitFor();
    await page.locator('svg.statechart [data-state-id="deployment.syncing.fetching"]').click();
    await page.locator('svg.statechart [data-state-id="deployment.syncing.fetching.running"]').waitFor();
    await page.locator('svg.statechart').screenshot({ path: path.join(ARTIFACTS, 'statechart-expanded.png') });
    await page.locator('svg.statechart .toggle[data-collapse="deployment.syncing"]').click();
    await page.locator('svg.statechart [data-state-id="deployment.syncing"][data-collapsed="true"]').waitFor();
    expect(await page.locator('svg.statechart [data-state-id^="deployment.syncing."]').count()).toBe(0);
    // still highlighted after the redraws
    await expect(page.locator('svg.statechart .state.current').getAttribute('data-state-id')).resolves.toBe('deployment.healthy');
  });

  it('draws every state and transition of GET /api/machine in the full chart', async () => {
    await page.locator('#chart-full').click();
    await page.locator('svg.statechart[data-view="full"]').waitFor();
    const machine = await page.evaluate(async (bearer) => {
      const response = await fetch('/api/machine', { headers: { authorization: `Bearer ${bearer}` } });
      return (await response.json()) as { states: Array<{ id: string }>; transitions: Array<{ id: string }> };
    }, token);
    expect(machine.states.length).toBeGreaterThan(20);
    const drawnStates = await page.locator('svg.statechart [data-state-id]').evaluateAll((els) => els.map((e) => e.getAttribute('data-state-id')));
    const drawnEdges = await page.locator('svg.statechart [data-transition-id]').evaluateAll((els) =>
      els.map((e) => ({ id: e.getAttribute('data-transition-id'), paths: e.querySelectorAll('path').length })));
    expect([...drawnStates].sort()).toEqual(machine.states.map((s) => s.id).sort());
    expect(drawnEdges.map((e) => e.id).sort()).toEqual(machine.transitions.map((tr) => tr.id).sort());
    // every edge has a routed path, not just an empty group
    expect(drawnEdges.filter((e) => e.paths === 0)).toEqual([]);
    await page.locator('#chart-full').click();
    await page.locator('svg.statechart[data-view="readable"]').waitFor();
  });

  it('leads a failed rollout\'s page with its error, the failed phase, the pod and the reason', async () => {
    await server.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:crashloop' where project = 'shop' and environment = 'staging'`);
    await page.locator('body[data-failed="true"]').waitFor({ timeout: 90_000 });
    const row = await server.db.one(sql.type(z.object({ last_error: z.string().nullable() }))`select last_error from deployments where project = 'shop' and environment = 'staging'`);
    const lastError = String(row.last_error);
    expect(lastError).toMatch(/CrashLoopBackOff/);
    expect(await page.evaluate(() => (document.getElementById('view')?.firstElementChild as HTMLElement | null)?.id)).toBe('failure');
    await sleepUntil(async () => (await page.locator('#failure-phase').count()) === 1 && (await page.locator('#failure-phase').getAttribute('data-phase')) === 'verify', { timeoutMs: 10_000, message: 'the failed phase was not shown' });
    await expect(page.locator('#failure-error').textContent()).resolves.toBe(lastError);
    await expect(page.locator('#failure-reason').textContent()).resolves.toContain('CrashLoopBackOff');
    const pod = (await page.locator('#failure-pod').textContent()) ?? '';
    expect(pod).not.toBe('');
    expect(lastError).toContain(`pod ${pod}`);
    const box = await page.locator('#failure-error').boundingBox();
    expect(box?.y ?? 9999).toBeLessThan(200);
    await page.screenshot({ path: path.join(ARTIFACTS, 'deployment-failed.png'), fullPage: false });
  });

  it('steps through the whole journaled life, first to last, highlighting each step\'s state', async () => {
    const Step = z.object({ seq: z.number(), to_state: z.string(), event: z.string(), action_id: z.string().nullable(), image_ref: z.string().nullable(), attempt: z.number().nullable(), last_error: z.string().nullable() });
    const steps = await server.db.any(sql.type(Step)`
      select t.seq, t.to_state, t.event, t.action_id, t.image_ref, t.attempt, t.last_error
      from deployment_transitions t join deployments d on d.id = t.deployment_id
      where d.project = 'shop' and d.environment = 'staging' order by t.seq`);
    expect(steps.length).toBeGreaterThan(10);
    // the journal recorded the context of every step taken by an action
    const inAction = steps.filter((r) => !['idle', 'healthy', 'failed', 'stopped.idle'].includes(String(r.to_state)));
    expect(inAction.every((r) => r.action_id !== null && r.image_ref !== null && r.attempt !== null)).toBe(true);
    expect(steps.some((r) => r.image_ref === 'registry.example/shop:crashloop' && String(r.last_error ?? '').includes('CrashLoopBackOff'))).toBe(true);

    await page.locator('#step-first').click();
    for (const [i, row] of steps.entries()) {
      if (i > 0) await page.locator('#step-next').click();
      await sleepUntil(() => page.evaluate((seq) => document.body.dataset.stepSeq === String(seq), row.seq), { message: `step ${String(row.seq)} not shown` });
      await expect(page.locator('svg.statechart .state.current').getAttribute('data-state-id')).resolves.toBe(`deployment.${topOf(String(row.to_state))}`);
      await expect(page.locator('svg.statechart').getAttribute('data-current-state')).resolves.toBe(row.to_state);
      await expect(page.locator('#step-event').textContent()).resolves.toBe(row.event);
      await expect(page.locator('#step-context tr[data-field="image_ref"] td').first().textContent()).resolves.toBe(row.image_ref === null ? '–' : String(row.image_ref));
      // the transition taken is found in the machine (and its edge marked unless it stays inside a collapsed box)
      if (i > 0) expect(await page.locator('svg.statechart').getAttribute('data-last-transition'), `transition of step ${String(row.seq)}`).toBeTruthy();
    }
    expect(new URL(page.url()).searchParams.get('seq')).toBe(String(steps.at(-1)?.seq));

    // a deep link to a step in the middle: the page opens there
    const middle = steps.find((r) => String(r.to_state).startsWith('verifying') && r.image_ref === 'registry.example/shop:2.0.0') ?? steps[Math.floor(steps.length / 2)];
    await page.goto(`${server.url}/ui/deployments/shop/staging?seq=${String(middle?.seq)}`);
    await page.locator('body[data-deployment-ready="true"]').waitFor();
    expect(await page.evaluate(() => document.body.dataset.stepSeq)).toBe(String(middle?.seq));
    await expect(page.locator('svg.statechart .state.current').getAttribute('data-state-id')).resolves.toBe(`deployment.${topOf(String(middle?.to_state))}`);
    await expect(page.locator('#step-slider').inputValue()).resolves.toBe(String(steps.indexOf(middle as (typeof steps)[number])));
    await expect(page.locator('#step-label').textContent()).resolves.toContain(`seq ${String(middle?.seq)}`);
    // its action's history row, with the phases
    await page.locator('#step-history .bar-row').first().waitFor();
    // the chart and the time travel panel together
    await page.evaluate(() => document.getElementById('chart')?.closest('section')?.scrollIntoView());
    await page.screenshot({ path: path.join(ARTIFACTS, 'time-travel.png'), fullPage: false });
    // back to following the newest
    await page.locator('#step-live').click();
    expect(await page.evaluate(() => document.body.dataset.stepSeq)).toBe(String(steps.at(-1)?.seq));
    expect(new URL(page.url()).search).toBe('');
  });

  it('shows a canary in flight: its revision, the split last asked for, and its steps with the current one marked', async () => {
    await server.db.query(sql.unsafe`insert into deployments (project, environment, image_ref) values ('shop', 'canary', 'registry.example/shop:1.0.0')`);
    await sleepUntil(async () => (await server.db.maybeOne(sql.unsafe`
      select 1 from deployments where project = 'shop' and environment = 'canary' and current_status = 'healthy'`)) !== null, { timeoutMs: 30_000, message: 'shop/canary healthy' });
    // the actor rests (healthy): the snapshot is only rewritten on a change, so this one is served
    const canary = {
      strategy: { kind: 'canary', steps: [{ setWeight: 1000 }, { pauseMs: 30_000 }, { setWeight: 5000 }] },
      canary: { revision: 'r3', stable: { name: 'r2' }, step: 1, split: [{ revision: 'r2', weightBps: 9000 }, { revision: 'r3', weightBps: 1000 }], pauseUntil: null, paused: true, abortReason: null },
    };
    await server.db.query(sql.unsafe`
      update deployment_snapshots s set snapshot = jsonb_set(jsonb_set(s.snapshot, '{context,work}', ${sql.jsonb(canary)}), '{value}', '{"verifying":{"canary":{"steps":"held"}}}')
      from deployments d where d.id = s.deployment_id and d.project = 'shop' and d.environment = 'canary'`);
    await page.goto(`${server.url}/ui/deployments/shop/canary`);
    const line = page.locator('#canary');
    await line.waitFor({ timeout: 10_000 });
    await expect(line.textContent()).resolves.toContain('r3 from r2: r2 90 % · r3 10 % (paused)');
    const steps = await line.locator('.canary-step').evaluateAll((els) => els.map((el) => `${el.textContent}:${(el as HTMLElement).dataset.status}`));
    expect(steps).toEqual(['10 %:done', 'pause 30 s:current', '50 %:pending']);
    await page.screenshot({ path: path.join(ARTIFACTS, 'deployment-canary.png'), fullPage: false });
  });

  it('needed nothing but localhost and logged no errors', async () => {
    expect(aborted).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('serves data only with a token; the static assets need none', async () => {
    const machine = await fetch(`${server.url}/api/machine`);
    expect(machine.status).toBe(401);
    const events = await fetch(`${server.url}/api/events`);
    expect(events.status).toBe(401);
    const snapshot = await fetch(`${server.url}/api/projects/shop/deployments/staging/snapshot`);
    expect(snapshot.status).toBe(401);
    for (const asset of ['/ui', '/ui/deployments/shop/staging', '/ui/static/app.js', '/ui/vendor/elk.bundled.js']) {
      const response = await fetch(`${server.url}${asset}`);
      expect(response.status, asset).toBe(200);
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      const text = await response.text();
      expect(text).not.toContain('shop:2.0.0');
    }
  });
});
