// `npm run bench:render [-- --renders N]`: what a render costs. The built-in template renders
// in-process. An ops repo render (the demo's templates) runs in a render process: the same repo's
// next render reuses it; another repo's takes the spare (ready if it had time to start) or waits
// for a new process. Prints a table and writes bench/results/render.json.
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

const base = await mkdtemp(path.join(os.tmpdir(), 'keelson-bench-render-'));
/** A checkout of the demo repo: each is a different repo to the renderer. */
async function checkout(name: string): Promise<string> {
  const dir = path.join(base, name);
  for (const [file, content] of Object.entries(DEMO_FILES)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  return dir;
}
const repo = await checkout('reused');
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
  // the spare was started with the renderer; give it time to be ready (a bench may sleep)
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const first = await timed(() => renderer.render(input(repo)));
  const reused: number[] = [];
  for (let i = 0; i < renders; i++) reused.push(await timed(() => renderer.render(input(repo))));
  const others = await Promise.all(Array.from({ length: renders * 2 }, (_, i) => checkout(`other-${i}`)));
  const backToBack: number[] = [];
  for (let i = 0; i < renders; i++) backToBack.push(await timed(() => renderer.render(input(others[i] ?? repo))));
  const spaced: number[] = [];
  for (let i = 0; i < renders; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    spaced.push(await timed(() => renderer.render(input(others[renders + i] ?? repo))));
  }
  const results = {
    builtinMsPerRender: round((builtinMs / builtinCount) * 1000) / 1000,
    opsRepoFirstRenderMs: round(first),
    opsRepoReusedProcessMs: summary(reused),
    opsRepoNewRepoBackToBackMs: summary(backToBack),
    opsRepoNewRepoSpareReadyMs: summary(spaced),
    loadAverage: os.loadavg().map(round),
    cpus: os.availableParallelism(),
  };
  console.table({
    'built-in template, in-process (ms per render)': { value: results.builtinMsPerRender },
    'ops repo, first render, spare ready (ms)': { value: results.opsRepoFirstRenderMs },
    'same repo again, process reused (p50 ms)': { value: results.opsRepoReusedProcessMs.p50 },
    'same repo again, process reused (p90 ms)': { value: results.opsRepoReusedProcessMs.p90 },
    'another repo, back to back: new process (p50 ms)': { value: results.opsRepoNewRepoBackToBackMs.p50 },
    'another repo, spare ready (p50 ms)': { value: results.opsRepoNewRepoSpareReadyMs.p50 },
    'another repo, spare ready (p90 ms)': { value: results.opsRepoNewRepoSpareReadyMs.p90 },
    'load average (1, 5, 15 min)': { value: results.loadAverage.join(' ') },
  });
  const out = path.join(path.dirname(new URL(import.meta.url).pathname), 'results');
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'render.json'), `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await renderer.close();
  await rm(base, { recursive: true, force: true });
}
