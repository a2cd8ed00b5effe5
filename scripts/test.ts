// `npm test`: the whole suite, exactly as CI runs it (.ci/run). Installs what the suite needs
// from Debian when run as root, then type-check, lint, vitest on the default database (embedded
// PostgreSQL 18), and the database-contract, runtime and end-to-end deploy suites once more on
// Debian's PostgreSQL 15 (the oldest major we test; the README promises ≥ 14). Ends with one
// plain line "N passed, N failed" summed from vitest's JSON reports.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';

function run(label: string, command: string, args: string[], env: Record<string, string> = {}): boolean {
  console.log(`\n▶ ${label}: ${command} ${args.join(' ')}`);
  // CI has no terminal: apt must never stop to ask
  const result = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...env } });
  if (result.status !== 0) console.error(`✗ ${label} failed (exit ${result.status ?? result.signal})`);
  return result.status === 0;
}

/** The second database the suites run on: Debian's binaries, run as the `postgres` user. */
const OLDEST_PG = 15;

function ensureDebianPackages(): void {
  const needed = [
    ['/usr/bin/chromium', 'chromium'],
    ['/usr/bin/git', 'git'],
    [`/usr/lib/postgresql/${OLDEST_PG}/bin/postgres`, `postgresql-${OLDEST_PG}`],
    // the container image test (test/image/)
    ['/usr/bin/buildah', 'buildah'],
    ['/usr/bin/podman', 'podman'],
    ['/usr/bin/mmdebstrap', 'mmdebstrap'],
  ].filter(([file]) => !existsSync(file as string)).map(([, pkg]) => pkg as string);
  if (needed.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.warn(`missing Debian packages ${needed.join(', ')}; run as root or install them to run every test`);
    return;
  }
  run('apt-get update', 'apt-get', ['update', '-qq']);
  run(`install ${needed.join(' ')}`, 'apt-get', ['install', '-y', '-qq', ...needed]);
}

interface Report {
  numPassedTests: number;
  numFailedTests: number;
}

/** One vitest run with its own JSON report; the counts are zero when no report was written. */
function vitest(label: string, args: string[], report: string, env: Record<string, string> = {}): { ok: boolean; counts: Report } {
  rmSync(report, { force: true });
  const ok = run(label, 'vitest', ['run', ...args, '--reporter=default', '--reporter=json', `--outputFile=${report}`], env);
  const counts = existsSync(report) ? (JSON.parse(readFileSync(report, 'utf8')) as Report) : { numPassedTests: 0, numFailedTests: 0 };
  return { ok, counts };
}

ensureDebianPackages();
const typecheck = run('type-check', 'tsc', ['--noEmit', '-p', '.']);
const lint = run('lint', 'eslint', ['.']);
mkdirSync('test-artifacts', { recursive: true });
const runs = [
  vitest('tests', [], 'test-artifacts/vitest.json'),
  vitest(
    `database, runtime and deploy suites on PostgreSQL ${OLDEST_PG}`,
    ['test/db', 'test/runtime', 'test/e2e/deploy.test.ts'],
    `test-artifacts/vitest-pg${OLDEST_PG}.json`,
    { KEELSON_TEST_PG: `system:${OLDEST_PG}` },
  ),
];

let passed = 0;
let failed = 0;
for (const { ok, counts } of runs) {
  passed += counts.numPassedTests;
  failed += counts.numFailedTests;
  // a run that failed without failing a test (a crash, a failed setup) still counts
  if (!ok && counts.numFailedTests === 0) failed += 1;
}
// A type or lint failure fails the run even when every test passed.
if (!typecheck || !lint) failed += 1;
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
