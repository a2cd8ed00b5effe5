// `npm run bench [-- wakeup|idle] [--updates N] [--deployments N] [--seconds N]`
// `npm run bench -- fleet [--deployments N] [--time-scale N]`: a fleet rollout against the
// simulator, all real and in separate processes (bench/fleet.ts).
// Speed and memory of the actor runtime on real PostgreSQL (an embedded server in a temp dir,
// or BENCH_DATABASE_URL). Effects resolve at once: what is measured is keelson's host, not a
// cluster. Prints a table and writes bench/results/latest.json. BENCH_CPU_PROF=dir: the idle
// host writes a V8 CPU profile of its measured window there (open it in Chrome DevTools);
// BENCH_HEAP_PROF=dir: a sampling allocation profile of the same window (what the GC works on).
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import inspector from 'node:inspector/promises';
import os from 'node:os';
import { getHeapSpaceStatistics } from 'node:v8';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { sql } from 'slonik';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { createDb, type Db } from '../src/db/pool.ts';
import { createLogger } from '../src/logger.ts';
import type { Effects } from '../src/runtime/effects.ts';
import { createRuntime, type Runtime, type TransitionNotice } from '../src/runtime/runtime.ts';

if (process.argv[2] === 'fleet') {
  // its own flags and processes: it exits when done
  await import('./fleet.ts');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    updates: { type: 'string', default: '500' },
    deployments: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '60' },
    tick: { type: 'string', default: '10000' },
  },
});
const scenarios = positionals.length > 0 ? positionals : ['wakeup', 'idle'];
const log = createLogger({ level: 'warn', format: 'json' });

const instantEffects: Effects = {
  sync: async () => ({ sha: null }),
  render: async (input) => ({ plan: { id: input.deploymentId, hash: '', refs: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: input.desired.project }], count: 1 }, files: [] }),
  apply: async (input) => ({ applied: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'app', namespace: input.namespace }] }),
  verify: async () => ({ message: 'current' }),
  scale: async () => ({ message: 'scaled' }),
  findRollbackTarget: async () => null,
  checkDrift: async () => ({ drifted: false, reason: null }),
  teardown: async () => ({ message: 'deleted' }),
};

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

async function freshDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`drop database if exists ${name} with (force)`);
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  return url.toString();
}

async function untilTransition(runtime: Runtime, predicate: (n: TransitionNotice) => boolean): Promise<TransitionNotice> {
  return await new Promise((resolve) => {
    const listener = (notice: TransitionNotice) => {
      if (!predicate(notice)) return;
      runtime.events.off('transition', listener);
      resolve(notice);
    };
    runtime.events.on('transition', listener);
  });
}

/** From a committed UPDATE to the journaled transition out of the resting state. */
async function wakeup(adminUrl: string) {
  const updates = Number(values.updates);
  const url = await freshDatabase(adminUrl, 'keelson_bench_wakeup');
  const db = await createDb(url);
  const runtime = createRuntime({ db, databaseUrl: url, log, effects: instantEffects, tickIntervalMs: 10_000 });
  await runtime.start();
  const id = await db.oneFirst(sql.unsafe`insert into deployments (project, environment, image_ref) values ('bench', 'prod', 'bench:0') returning id`) as string;
  await untilTransition(runtime, (n) => n.deploymentId === id && n.to === 'healthy');
  const latencies: number[] = [];
  const writer = new pg.Client({ connectionString: url });
  await writer.connect();
  for (let i = 1; i <= updates; i++) {
    const left = untilTransition(runtime, (n) => n.deploymentId === id && n.from === 'healthy');
    const healthy = untilTransition(runtime, (n) => n.deploymentId === id && n.to === 'healthy');
    await writer.query(`update deployments set image_ref = $1 where id = $2`, [`bench:${i}`, id]);
    const committed = performance.now();
    await left;
    latencies.push(performance.now() - committed);
    await healthy;
    if (i % 100 === 0) process.stderr.write(`  wakeup: ${i}/${updates}\n`);
  }
  await writer.end();
  await runtime.stop();
  await db.end();
  latencies.sort((a, b) => a - b);
  return {
    updates,
    p50_ms: round(percentile(latencies, 50)),
    p90_ms: round(percentile(latencies, 90)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(latencies.at(-1) ?? Number.NaN),
    mean_ms: round(latencies.reduce((a, b) => a + b, 0) / latencies.length),
  };
}

/**
 * One process hosting N idle deployments. This process inserts the rows and takes them to
 * healthy (ramp-up); then a fresh child process restores all N actors and is measured through
 * ticks, so its figures are a host's steady state, not the ramp-up's allocation high-water mark.
 */
async function idle(adminUrl: string) {
  const count = Number(values.deployments);
  const url = await freshDatabase(adminUrl, 'keelson_bench_idle');
  const db: Db = await createDb(url, { maxPoolSize: 20 });
  await db.query(sql.unsafe`
    insert into deployments (project, environment, image_ref)
    select 'p' || i, 'prod', 'bench:1' from generate_series(1, ${count}) i`);
  const runtime = createRuntime({ db, databaseUrl: url, log, effects: instantEffects, tickIntervalMs: 10_000, leaseTtlMs: 30_000 });
  const startedAt = performance.now();
  await runtime.start();
  for (;;) {
    const healthy = Number(await db.oneFirst(sql.unsafe`select count(*) from deployments where current_status = 'healthy'`));
    if (healthy >= count) break;
    process.stderr.write(`  idle: ${healthy}/${count} healthy\n`);
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
  const rampSeconds = (performance.now() - startedAt) / 1000;
  await runtime.stop();
  await db.end();
  process.stderr.write(`  idle: measuring a fresh process hosting ${count} restored deployments for ${values.seconds} s\n`);
  // measured as keelson runs (bin/keelson.js's flags)
  const child = spawn(process.execPath, ['--max-semi-space-size=16', '--expose-gc', fileURLToPath(import.meta.url), 'idle-host', '--seconds', String(values.seconds), '--tick', String(values.tick)], {
    env: { ...process.env, BENCH_HOST_URL: url, BENCH_HOST_COUNT: String(count) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the measured host process failed (exit ${code})`);
  const host = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
  return { deployments: count, ramp_up_s: round(rampSeconds, 1), ramp_up_deployments_per_s: round(count / rampSeconds, 0), ...host };
}

async function saveProfile(session: inspector.Session, profile: unknown, dir: string | undefined, name: string, what: string): Promise<void> {
  await mkdir(dir ?? '.', { recursive: true });
  const file = path.join(dir ?? '.', name);
  await writeFile(file, JSON.stringify(profile));
  session.disconnect();
  process.stderr.write(`  idle: ${what} of the measured window in ${file}\n`);
}

/** The measured process: restore N actors, then idle through ticks. Prints one JSON line. */
async function idleHost() {
  const url = process.env.BENCH_HOST_URL ?? '';
  const count = Number(process.env.BENCH_HOST_COUNT);
  const seconds = Number(values.seconds);
  const tickIntervalMs = Number(values.tick);
  globalThis.gc?.();
  const baseline = process.memoryUsage();
  const db = await createDb(url, { maxPoolSize: 20 });
  const runtime = createRuntime({ db, databaseUrl: url, log, effects: instantEffects, tickIntervalMs, leaseTtlMs: 30_000 });
  const restoreStart = performance.now();
  await runtime.start();
  const restoreSeconds = (performance.now() - restoreStart) / 1000;
  if (runtime.stats().hosted !== count) throw new Error(`restored ${runtime.stats().hosted} of ${count}`);
  globalThis.gc?.();
  // BENCH_CPU_PROF=dir: a V8 CPU profile of the measured window only (not the restore)
  const profiler = process.env.BENCH_CPU_PROF ? new inspector.Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  // BENCH_HEAP_PROF=dir: a sampling allocation profile (every allocation, also those collected)
  const heapProfiler = process.env.BENCH_HEAP_PROF ? new inspector.Session() : undefined;
  if (heapProfiler) {
    heapProfiler.connect();
    await heapProfiler.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 250);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpuStart);
  const wall = performance.now() - wallStart;
  const { lastTickMs } = runtime.stats();
  if (profiler) await saveProfile(profiler, (await profiler.post('Profiler.stop')).profile, process.env.BENCH_CPU_PROF, `idle-host-${count}-${Date.now()}.cpuprofile`, 'CPU profile');
  if (heapProfiler) await saveProfile(heapProfiler, (await heapProfiler.post('HeapProfiler.stopSampling')).profile, process.env.BENCH_HEAP_PROF, `idle-host-${count}-${Date.now()}.heapprofile`, 'allocation profile');
  globalThis.gc?.();
  const memory = process.memoryUsage();
  await runtime.stop();
  await db.end();
  console.log(JSON.stringify({
    restore_s: round(restoreSeconds, 2),
    measured_s: round(wall / 1000, 1),
    tick_interval_ms: tickIntervalMs,
    tick_fan_out_ms: round(lastTickMs, 1),
    cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / wall) * 100, 2),
    heap_used_mb: round(memory.heapUsed / 2 ** 20, 1),
    heap_total_mb: round(memory.heapTotal / 2 ** 20, 1),
    external_mb: round(memory.external / 2 ** 20, 1),
    // the young generation is what V8 grows and keeps on a machine with much memory
    new_space_mb: round((getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0) / 2 ** 20, 1),
    heap_per_deployment_kb: round((memory.heapUsed - baseline.heapUsed) / count / 1024, 2),
    rss_mb: round(memory.rss / 2 ** 20, 1),
    rss_peak_mb: round(rssPeak / 2 ** 20, 1),
    rss_per_deployment_kb: round((memory.rss - baseline.rss) / count / 1024, 1),
  }));
}

if (scenarios[0] === 'idle-host') {
  await idleHost();
  process.exit(0);
}

const machine = { cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`, memory_gb: round(os.totalmem() / 2 ** 30, 1), node: process.version, platform: `${os.platform()} ${os.release()}` };
let stop = async () => {};
let adminUrl = process.env.BENCH_DATABASE_URL;
if (!adminUrl) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-bench-'));
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), log });
  adminUrl = server.url('postgres');
  stop = async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
const results: Record<string, unknown> = { at: new Date().toISOString(), machine };
try {
  const version = await new pg.Client({ connectionString: adminUrl });
  await version.connect();
  results.postgres = (await version.query('show server_version')).rows[0]?.server_version;
  await version.end();
  if (scenarios.includes('wakeup')) {
    process.stderr.write(`wakeup: ${values.updates} updates\n`);
    results.wakeup = await wakeup(adminUrl);
  }
  if (scenarios.includes('idle')) {
    process.stderr.write(`idle: ${values.deployments} deployments, ${values.seconds} s measured\n`);
    results.idle = await idle(adminUrl);
  }
} finally {
  await stop();
}

console.log(`\nkeelson benchmark — ${machine.cpus}, ${machine.memory_gb} GiB, Node ${machine.node}, PostgreSQL ${String(results.postgres)}`);
for (const [name, figures] of Object.entries(results)) {
  if (typeof figures !== 'object' || figures === null || name === 'machine') continue;
  console.log(`\n${name}`);
  for (const [key, value] of Object.entries(figures)) console.log(`  ${key.padEnd(30)} ${String(value)}`);
}
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/latest.json', `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwrote bench/results/latest.json');
