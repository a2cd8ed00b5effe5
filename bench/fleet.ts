// `npm run bench -- fleet [--deployments 1000] [--time-scale 10] [--kube-qps N]`
// A fleet rollout, all real and each part its own process so its CPU is measurable by pid: an
// embedded PostgreSQL, `keelson sim --time-scale N` and `keelson serve` (real effects) against it.
// Creates N deployments on the built-in template, waits until all are healthy, then bumps every
// image with ONE `UPDATE` and measures until all are healthy again. Writes
// bench/results/fleet-<N>.json and fleet-<N>.svg (healthy over time, settle-time distribution).
//
// Clean-up first: every child is spawned detached (its own process group) and killed by `-pid`
// at the end, on failure and on Ctrl-C; the embedded PostgreSQL has its reaper besides.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/logger.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
/** What bin/keelson.js runs keelson with (its shebang): measured as users run it. */
const NODE_FLAGS = ['--max-semi-space-size=16'];
const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    deployments: { type: 'string', default: '1000' },
    'time-scale': { type: 'string', default: '10' },
    'timeout-s': { type: 'string', default: '1800' },
    // keelson's client-side rate limit (KEELSON_KUBE_QPS; burst twice that); unset: its default
    'kube-qps': { type: 'string' },
  },
});
const N = Number(values.deployments);
const TIME_SCALE = Number(values['time-scale']);
const TIMEOUT_MS = Number(values['timeout-s']) * 1000;
const KUBE_QPS = values['kube-qps'] === undefined ? undefined : Number(values['kube-qps']);
if (KUBE_QPS !== undefined && !(KUBE_QPS > 0)) throw new Error(`--kube-qps must be positive, got ${values['kube-qps']}`);
if (!Number.isInteger(N) || N < 1) throw new Error(`--deployments must be a positive integer, got ${values.deployments}`);
if (!(TIME_SCALE > 0)) throw new Error(`--time-scale must be positive, got ${values['time-scale']}`);

const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const progress = (line: string) => process.stderr.write(`[fleet ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

// Process groups alive now: SIGKILLed from the exit hook (synchronous) if the runner dies.
const liveGroups = new Set<number>();
const killGroup = (pid: number) => {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
};
process.once('exit', () => {
  for (const pid of liveGroups) killGroup(pid);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    process.exit(130);
  });
}

/** CPU ms (user + system) of one process, from /proc/<pid>/stat. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // the command name may hold spaces: fields count from after its closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return round(kb / 1024);
}

interface Child {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly tail: string[];
  exited: boolean;
  /** resolves with the first line matching, or rejects when the process exits first */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
}

function spawnNode(name: string, args: string[], env: NodeJS.ProcessEnv, logDir: string): Child {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const pid = child.pid!;
  liveGroups.add(pid);
  const log = createWriteStream(path.join(logDir, `${name}.log`));
  const tail: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const c: Child = {
    name,
    child,
    pid,
    tail,
    exited: false,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms:\n${tail.join('\n')}`)), timeoutMs);
        waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
        child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${name} exited (${code}):\n${tail.join('\n')}`))));
      }),
  };
  const onLine = (line: string) => {
    log.write(`${line}\n`);
    tail.push(line);
    if (tail.length > 30) tail.shift();
    for (const w of [...waiters]) {
      if (w.pattern.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  child.once('exit', () => {
    c.exited = true;
    liveGroups.delete(pid);
    log.end();
  });
  return c;
}

/** keelson's own count of its Kubernetes API requests, by verb (keelson_kube_requests_total). */
async function kubeRequests(metricsUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^keelson_kube_requests_total\{([^}]*)\} ([\d.e+]+)/.exec(line);
    if (!m) continue;
    const verb = /verb="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
    out.set(verb, (out.get(verb) ?? 0) + Number(m[2]));
  }
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Two panels: healthy deployments over time since the UPDATE, and the settle-time histogram. */
function chart(title: string, series: [number, number][], settle: number[], total: number): string {
  const W = 900;
  const H = 330;
  const pad = { l: 56, r: 16, t: 40, b: 44 };
  const panelW = (W - 3 * pad.l) / 2;
  const plotH = H - pad.t - pad.b;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  const axes = (x0: number, xMax: number, yMax: number, xLabel: string, yLabel: string) => {
    out.push(`<line x1="${x0}" y1="${pad.t + plotH}" x2="${x0 + panelW}" y2="${pad.t + plotH}" stroke="#333"/>`);
    out.push(`<line x1="${x0}" y1="${pad.t}" x2="${x0}" y2="${pad.t + plotH}" stroke="#333"/>`);
    for (let i = 0; i <= 4; i++) {
      const x = x0 + (panelW * i) / 4;
      const y = pad.t + plotH - (plotH * i) / 4;
      out.push(`<text x="${x}" y="${pad.t + plotH + 16}" text-anchor="middle">${round((xMax * i) / 4)}</text>`);
      out.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end">${Math.round((yMax * i) / 4)}</text>`);
      if (i > 0) out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + panelW}" y2="${y}" stroke="#eee"/>`);
    }
    out.push(`<text x="${x0 + panelW / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
    out.push(`<text x="${x0 - 44}" y="${pad.t + plotH / 2}" text-anchor="middle" transform="rotate(-90 ${x0 - 44} ${pad.t + plotH / 2})">${esc(yLabel)}</text>`);
  };
  // healthy over time
  const x0 = pad.l;
  const tMax = Math.max(1, ...series.map(([t]) => t));
  axes(x0, tMax, total, 's after the UPDATE', 'deployments healthy');
  const points = series.map(([t, n]) => `${round(x0 + (t / tMax) * panelW)},${round(pad.t + plotH - (n / total) * plotH)}`).join(' ');
  out.push(`<polyline points="${points}" fill="none" stroke="#2a6fdb" stroke-width="2"/>`);
  // settle-time histogram
  const x1 = 2 * pad.l + panelW + pad.r;
  const bins = 30;
  const sMax = Math.max(1, ...settle);
  const counts = new Array<number>(bins).fill(0);
  for (const s of settle) counts[Math.min(bins - 1, Math.floor((s / sMax) * bins))]!++;
  const cMax = Math.max(1, ...counts);
  axes(x1, sMax, cMax, 'settle time per deployment (s)', 'deployments');
  counts.forEach((c, i) => {
    const h = (c / cMax) * plotH;
    out.push(`<rect x="${round(x1 + (i * panelW) / bins + 1)}" y="${round(pad.t + plotH - h)}" width="${round(panelW / bins - 2)}" height="${round(h)}" fill="#e07b39"/>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-fleet-'));
await chmod(dir, 0o755); // initdb runs as `postgres` when root: every folder above must be traversable
const logDir = path.join(dir, 'logs');
await mkdir(logDir);
const children: Child[] = [];
let database: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
let pool: pg.Pool | undefined;
let failed = false;
try {
  progress(`N = ${N}, time scale ${TIME_SCALE}; logs in ${logDir}`);
  database = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), log: createLogger({ level: 'warn', format: 'json' }), port: await freePort() });
  const admin = new pg.Client({ connectionString: database.url('postgres') });
  await admin.connect();
  await admin.query('create database keelson_fleet');
  await admin.end();
  const dbUrl = database.url('keelson_fleet');
  await migrate(dbUrl);
  pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
  // an idle client's connection ended by PostgreSQL (its shutdown at the end) is no failure
  pool.on('error', () => undefined);

  const kubeconfig = path.join(dir, 'kubeconfig');
  // BENCH_SIM_PROFILE=<dir>: the simulator writes a CPU profile there (node --cpu-prof)
  const profile = process.env.BENCH_SIM_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_SIM_PROFILE)] : [];
  const sim = spawnNode('sim', [...NODE_FLAGS, ...profile, 'src/main.ts', 'sim', '--kubeconfig', kubeconfig, '--time-scale', String(TIME_SCALE), '--log-level', 'warn'], {}, logDir);
  children.push(sim);
  await sim.waitFor(/Simulated cluster at/, 30_000);
  const keelsonPort = await freePort();
  const keelson = spawnNode(
    'keelson',
    [...NODE_FLAGS, 'src/main.ts', 'serve', '--no-demo'],
    { DATABASE_URL: dbUrl, KUBECONFIG: kubeconfig, KEELSON_CLUSTER: 'kubeconfig', KEELSON_LOG_FORMAT: 'json', KEELSON_LOG_LEVEL: 'warn', KEELSON_DATA_DIR: path.join(dir, 'keelson'), PORT: String(keelsonPort), ...(KUBE_QPS ? { KEELSON_KUBE_QPS: String(KUBE_QPS), KEELSON_KUBE_BURST: String(2 * KUBE_QPS) } : {}) },
    logDir,
  );
  children.push(keelson);
  const keelsonUrl = `http://127.0.0.1:${keelsonPort}`;
  for (let start = Date.now(); ; await sleep(200)) {
    if (keelson.exited) throw new Error(`keelson exited:\n${keelson.tail.join('\n')}`);
    if (await fetch(`${keelsonUrl}/metrics`).then((r) => r.ok, () => false)) break;
    if (Date.now() - start > 60_000) throw new Error(`keelson did not serve within 60 s:\n${keelson.tail.join('\n')}`);
  }
  const metricsUrl = `${keelsonUrl}/metrics`;
  progress(`simulator pid ${sim.pid}, keelson pid ${keelson.pid} at ${keelsonUrl}`);

  const healthyCount = async (image: string) =>
    Number((await pool!.query<{ n: string }>(`select count(*) n from deployments where current_status = 'healthy' and observed_generation = generation and current_image_ref like $1`, [image])).rows[0]!.n);
  const waitAllHealthy = async (image: string, phase: string, t0: number, series?: [number, number][]) => {
    let last = -1;
    let lastLine = 0;
    for (;;) {
      const n = await healthyCount(image);
      const t = (Date.now() - t0) / 1000;
      series?.push([round(t, 2), n]);
      if (n !== last && Date.now() - lastLine > 2000) {
        progress(`${phase}: ${n}/${N} healthy after ${round(t)} s`);
        lastLine = Date.now();
      }
      last = n;
      if (n >= N) return t;
      if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`${phase}: only ${n}/${N} healthy after ${TIMEOUT_MS / 1000} s`);
      await sleep(200);
    }
  };

  const created = Date.now();
  await pool.query(
    `insert into deployments (project, environment, image_ref)
     select 'f' || i, 'prod', 'registry.example/fleet/f' || i || ':1' from generate_series(1, $1::int) i`,
    [N],
  );
  const createdS = await waitAllHealthy('%:1', 'create', created);
  progress(`all ${N} healthy ${round(createdS)} s after the INSERT; settling 3 s before the UPDATE`);
  await sleep(3000);

  const xacts = async () => Number((await pool!.query<{ n: string }>(`select xact_commit n from pg_stat_database where datname = current_database()`)).rows[0]!.n);
  const before = { sim: await cpuMs(sim.pid), keelson: await cpuMs(keelson.pid), requests: await kubeRequests(metricsUrl), xacts: await xacts() };
  const peak = { sim: await rssMb(sim.pid), keelson: await rssMb(keelson.pid) };
  const sampler = setInterval(() => {
    void Promise.all([rssMb(sim.pid), rssMb(keelson.pid)])
      .then(([s, k]) => {
        peak.sim = Math.max(peak.sim, s);
        peak.keelson = Math.max(peak.keelson, k);
      })
      .catch(() => undefined);
  }, 500);
  const series: [number, number][] = [[0, 0]];
  const client = await pool.connect();
  let t0: Date;
  try {
    // the UPDATE's transaction time: what settle times count from
    const { rows } = await client.query<{ t0: Date; n: string }>(
      `with u as (update deployments set image_ref = replace(image_ref, ':1', ':2') returning 1) select now() t0, count(*) n from u`,
    );
    t0 = rows[0]!.t0;
  } finally {
    client.release();
  }
  const updateAt = Date.now();
  progress(`UPDATE of ${N} image_refs committed`);
  const allHealthyS = await waitAllHealthy('%:2', 'rollout', updateAt, series);
  clearInterval(sampler);
  const after = { sim: await cpuMs(sim.pid), keelson: await cpuMs(keelson.pid), requests: await kubeRequests(metricsUrl), xacts: await xacts() };
  const rss = { sim_mb: await rssMb(sim.pid), keelson_mb: await rssMb(keelson.pid), sim_peak_mb: peak.sim, keelson_peak_mb: peak.keelson };

  const settle = (
    await pool.query<{ s: number }>(`select extract(epoch from (deployed_at - $1::timestamptz))::float8 s from deployments order by 1`, [t0])
  ).rows.map((r) => round(Number(r.s), 2));
  const requests: Record<string, number> = {};
  let totalRequests = 0;
  for (const [verb, n] of after.requests) {
    const delta = n - (before.requests.get(verb) ?? 0);
    if (delta === 0) continue;
    requests[verb] = round(delta / N, 2);
    totalRequests += delta;
  }
  const results = {
    at: new Date().toISOString(),
    machine: { cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`, node: process.version },
    deployments: N,
    time_scale: TIME_SCALE,
    kube_qps: KUBE_QPS ?? 'default (50, burst 100)',
    create_all_healthy_s: round(createdS),
    rollout_all_healthy_s: round(allHealthyS, 2),
    // when the first row read healthy: against settle p50 it shows how far the rows lag the actors
    first_healthy_row_s: series.find(([, n]) => n > 0)?.[0] ?? null,
    settle_s: { p50: percentile(settle, 50), p90: percentile(settle, 90), p99: percentile(settle, 99), max: settle[settle.length - 1] },
    keelson_cpu_ms_per_rollout: round((after.keelson - before.keelson) / N),
    sim_cpu_ms_per_rollout: round((after.sim - before.sim) / N),
    kube_requests_per_rollout: round(totalRequests / N, 2),
    kube_requests_per_rollout_by_verb: requests,
    pg_transactions_per_rollout: round((after.xacts - before.xacts) / N, 2),
    rss,
    healthy_over_time: series,
    settle_times_s: settle,
  };
  const { healthy_over_time: _series, settle_times_s: _settle, ...summary } = results;
  console.log(JSON.stringify(summary, null, 2));
  await mkdir(path.join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  const base = path.join(REPO_ROOT, 'bench', 'results', `fleet-${N}${KUBE_QPS ? `-qps${KUBE_QPS}` : ''}`);
  await writeFile(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(
    `${base}.svg`,
    chart(`keelson fleet rollout: ${N} deployments, sim time scale ${TIME_SCALE}${KUBE_QPS ? `, kube QPS ${KUBE_QPS}` : ''}, all healthy ${round(allHealthyS)} s after one UPDATE`, series, settle, N),
  );
  progress(`wrote ${path.relative(REPO_ROOT, base)}.json and .svg`);
} catch (error) {
  failed = true;
  progress(`failed: ${(error as Error).stack ?? String(error)}`);
  progress(`logs kept in ${logDir}`);
} finally {
  // SIGTERM first (a --cpu-prof profile is written on a clean exit), then the whole group goes
  const exited = (c: Child) => (c.exited ? Promise.resolve() : new Promise<void>((resolve) => c.child.once('exit', () => resolve())));
  for (const c of children) if (!c.exited) c.child.kill('SIGTERM');
  await Promise.race([Promise.all(children.map(exited)), sleep(10_000)]);
  for (const c of children) killGroup(c.pid);
  await Promise.all(children.map(exited));
  await pool?.end().catch(() => undefined);
  await database?.stop().catch(() => undefined);
  if (!failed) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
process.exit(failed ? 1 : 0);
