// `npm test`: the whole suite, exactly as CI runs it (.ci/run). Installs what the suite needs
// from Debian when run as root, then type-check, lint and vitest; ends with one plain line
// "N passed, N failed" read from vitest's JSON report.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

function run(label: string, command: string, args: string[]): boolean {
  console.log(`\n▶ ${label}: ${command} ${args.join(' ')}`);
  // CI has no terminal: apt must never stop to ask
  const result = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (result.status !== 0) console.error(`✗ ${label} failed (exit ${result.status ?? result.signal})`);
  return result.status === 0;
}

function ensureDebianPackages(): void {
  const needed = [
    ['/usr/bin/chromium', 'chromium'],
    ['/usr/bin/git', 'git'],
  ].filter(([file]) => !existsSync(file as string)).map(([, pkg]) => pkg as string);
  if (needed.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.warn(`missing Debian packages ${needed.join(', ')}; run as root or install them to run every test`);
    return;
  }
  run('apt-get update', 'apt-get', ['update', '-qq']);
  run(`install ${needed.join(' ')}`, 'apt-get', ['install', '-y', '-qq', ...needed]);
}

ensureDebianPackages();
const typecheck = run('type-check', 'tsc', ['--noEmit', '-p', '.']);
const lint = run('lint', 'eslint', ['.']);
mkdirSync('test-artifacts', { recursive: true });
const report = 'test-artifacts/vitest.json';
const tests = run('tests', 'vitest', ['run', '--reporter=default', '--reporter=json', `--outputFile=${report}`]);

let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number };
  passed = json.numPassedTests;
  failed = json.numFailedTests;
}
// A type or lint failure fails the run even when every test passed.
if (!typecheck || !lint || (!tests && failed === 0)) failed += 1;
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = typecheck && lint && tests ? 0 : 1;
