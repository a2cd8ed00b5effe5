// `npm run bench:render [-- --renders N]`: what a render costs. The built-in template renders
// in-process; an ops repo render (the demo's templates) starts a render process of its own, so
// its cost is the process start when renders come back to back, and the render itself when the
// spare process had time to start. Prints a table and writes bench/results/render.json.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_FILES } from '../src/demo.ts';
import { createRenderer, type RenderInput } from '../src/render/renderer.ts';

const { values } = parseArgs({ options: { renders: { type: 'string', default: '20' }, builtin: { type: 'string', default: '2000' } } });
const renders = Number(values.renders);

const round = (n: number) => Math.round(n * 10) / 10;
function summary(samples: number[]): { p50: number; p90: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
  return { p50: round(at(50)), p90: round(at(90)), max: round(sorted.at(-1) ?? Number.NaN) };
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

const repo = await mkdtemp(path.join(os.tmpdir(), 'keelson-bench-render-'));
for (const [file, content] of Object.entries(DEMO_FILES)) {
  await mkdir(path.dirname(path.join(repo, file)), { recursive: true });
  await writeFile(path.join(repo, file), content);
}
const input = (root: string | null): RenderInput => ({
  root,
  basePath: '',
  manifestPath: 'demo',
  imageRef: 'registry.example/demo/web:1.0.0',
  project: 'demo',
  environment: 'local',
  namespace: 'demo-local',
  deploymentId: '00000000-0000-4000-8000-000000000000',
  valuesOverride: { greeting: 'hello', env: { GREETING: 'hello' } },
});

const renderer = createRenderer();
try {
  const builtinCount = Number(values.builtin);
  const builtinMs = await timed(async () => {
    for (let i = 0; i < builtinCount; i++) await renderer.render(input(null));
  });
  const cold = await timed(() => renderer.render(input(repo)));
  const backToBack: number[] = [];
  for (let i = 0; i < renders; i++) backToBack.push(await timed(() => renderer.render(input(repo))));
  const spaced: number[] = [];
  for (let i = 0; i < renders; i++) {
    // time for the spare render process to start (a bench may sleep; tests may not)
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    spaced.push(await timed(() => renderer.render(input(repo))));
  }
  const results = {
    builtinMsPerRender: round((builtinMs / builtinCount) * 1000) / 1000,
    opsRepoColdMs: round(cold),
    opsRepoBackToBackMs: summary(backToBack),
    opsRepoWithSpareReadyMs: summary(spaced),
    loadAverage: os.loadavg().map(round),
    cpus: os.availableParallelism(),
  };
  console.table({
    'built-in template, in-process (ms per render)': { value: results.builtinMsPerRender },
    'ops repo, first render (process start + render, ms)': { value: results.opsRepoColdMs },
    'ops repo, back to back (p50 ms)': { value: results.opsRepoBackToBackMs.p50 },
    'ops repo, back to back (p90 ms)': { value: results.opsRepoBackToBackMs.p90 },
    'ops repo, spare process ready (p50 ms)': { value: results.opsRepoWithSpareReadyMs.p50 },
    'ops repo, spare process ready (p90 ms)': { value: results.opsRepoWithSpareReadyMs.p90 },
    'load average (1, 5, 15 min)': { value: results.loadAverage.join(' ') },
  });
  const out = path.join(path.dirname(new URL(import.meta.url).pathname), 'results');
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'render.json'), `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await renderer.close();
  await rm(repo, { recursive: true, force: true });
}
