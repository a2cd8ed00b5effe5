// `npm run chaos [-- kill9 pg-restart partition api-faults replicas] [--profile short|full]
//   [--deployments N] [--kills N] [--seed N] [--identity stable|fresh] [--template repo|builtin]`
// Real keelson processes, a real PostgreSQL, the simulated cluster over HTTP and a git ops repo;
// each scenario disturbs them, checks the invariants of docs/operations.md ("Chaos suite") and
// prints its figures. Writes bench/results/chaos.json (logs under bench/results/chaos-logs/);
// exits 1 when an invariant failed.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, SCENARIOS, type Profile, type ScenarioName, type ScenarioResult } from './scenarios.ts';

const USAGE = `usage: npm run chaos -- [${SCENARIOS.join('|')} ...] [--profile short|full] [--deployments N] [--kills N] [--seed N] [--identity stable|fresh] [--template repo|builtin]`;

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    profile: { type: 'string', default: 'full' },
    deployments: { type: 'string' },
    kills: { type: 'string' },
    seed: { type: 'string' },
    identity: { type: 'string', default: 'stable' },
    template: { type: 'string', default: process.env.KEELSON_CHAOS_TEMPLATE ?? 'repo' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const positiveInt = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) fail(`--${name} expects a positive integer; got "${text}"`);
  return Number(text);
};
const unknown = positionals.filter((p) => !(SCENARIOS as readonly string[]).includes(p));
if (unknown.length > 0) fail(`unknown scenario ${unknown.join(', ')}; the scenarios are ${SCENARIOS.join(', ')}`);
if (values.profile !== 'short' && values.profile !== 'full') fail(`--profile expects short or full; got "${values.profile}"`);
if (values.template !== 'repo' && values.template !== 'builtin') fail(`--template expects repo or builtin; got "${values.template}"`);
if (values.identity !== 'stable' && values.identity !== 'fresh') fail(`--identity expects stable or fresh; got "${values.identity}"`);
const scenarios = (positionals.length > 0 ? positionals : [...SCENARIOS]) as ScenarioName[];
const profile = values.profile as Profile;
const seed = positiveInt('seed', values.seed) ?? Math.floor(Math.random() * 2 ** 31);
const logDir = path.resolve('bench/results/chaos-logs');

// Ctrl-C: the harness's exit hook SIGKILLs every keelson process group; the embedded
// PostgreSQL's reaper stops it when this process is gone.
process.on('SIGINT', () => {
  console.error('\ninterrupted: killing every process this run started');
  process.exit(130);
});
process.on('SIGTERM', () => process.exit(143));

const started = new Date();
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.error(`keelson chaos — profile ${profile}, seed ${seed}, identity ${values.identity}, template ${values.template}; ${machine}`);
const results: ScenarioResult[] = [];
for (const name of scenarios) {
  const t0 = Date.now();
  try {
    results.push(
      await runScenario(name, {
        profile,
        deployments: positiveInt('deployments', values.deployments),
        kills: positiveInt('kills', values.kills),
        seed,
        identity: values.identity as 'stable' | 'fresh',
        template: values.template as 'repo' | 'builtin',
        logDir,
        progress: (line) => console.error(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}`),
      }),
    );
  } catch (error) {
    console.error(`${name}: the scenario could not run: ${(error as Error).stack ?? String(error)}`);
    results.push({ scenario: name, profile, passed: false, durationS: Math.round((Date.now() - t0) / 1000), figures: {}, violations: { 'scenario ran': [(error as Error).message] } });
  }
  printResult(results.at(-1)!);
}

function printResult(r: ScenarioResult): void {
  console.log(`\n${r.scenario} (${r.profile}, ${r.durationS} s): ${r.passed ? 'PASSED' : 'FAILED'}`);
  for (const [key, value] of Object.entries(r.figures)) console.log(`  ${key.padEnd(44)} ${String(value)}`);
  for (const [invariant, found] of Object.entries(r.violations)) {
    console.log(`  ${found.length === 0 ? '✓' : '✗'} ${invariant}${found.length ? ` — ${found.length} violations` : ''}`);
    for (const v of found.slice(0, 5)) console.log(`      ${v}`);
    if (found.length > 5) console.log(`      … ${found.length - 5} more`);
  }
}

console.log('\nsummary');
for (const r of results) {
  const failed = Object.entries(r.violations).filter(([, v]) => v.length > 0).map(([k]) => k);
  console.log(`  ${r.scenario.padEnd(12)} ${r.passed ? 'passed' : `FAILED: ${failed.join('; ')}`}`);
}
await mkdir('bench/results', { recursive: true });
const file = 'bench/results/chaos.json';
await writeFile(file, `${JSON.stringify({ at: started.toISOString(), machine, profile, seed, identity: values.identity, results }, null, 2)}\n`);
console.log(`\nwrote ${file}; process logs in ${path.relative(process.cwd(), logDir)}/`);
process.exitCode = results.every((r) => r.passed) ? 0 : 1;
