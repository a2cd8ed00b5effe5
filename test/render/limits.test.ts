// A render is bounded: time (the main event loop keeps running and other renders complete while a
// template loops), output (a template printing gigabytes stops at the cap), objects, template
// size, and memory (a render that exhausts its heap fails alone, even by one allocation larger
// than the heap, which would abort a worker thread's whole process). A caller can cancel it.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { createRenderer, DEFAULT_RENDER_LIMITS, type RenderLimits, type Renderer } from '../../src/render/renderer.ts';
import { cleanupRepos, cm, makeRepo, renderError, renderInput } from './fixtures.ts';

const renderers: Renderer[] = [];

function rendererWith(limits: Partial<RenderLimits>, concurrency?: number): Renderer {
  const renderer = createRenderer({ ...DEFAULT_RENDER_LIMITS, ...limits }, { concurrency });
  renderers.push(renderer);
  return renderer;
}

afterAll(async () => {
  await Promise.all(renderers.map((renderer) => renderer.close()));
  cleanupRepos();
});

const MiB = 1024 * 1024;
/** 10^10 iterations of nothing: hours of work, no output, little memory. */
const ENDLESS = '{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}\n';
/** 2 MiB, doubled from one character, then printed 1024 times: 2 GiB of output. */
const DOUBLED = '{% set s = "x" %}{% for i in range(21) %}{% set s = s + s %}{% endfor %}';

describe('time', () => {
  it('a template looping forever fails at the timeout, while the event loop stays responsive and another render completes', async () => {
    const renderer = rendererWith({ timeoutMs: 2_000 }, 2);
    const looping = makeRepo({ 'api/10-fine.yaml': cm('before-the-loop'), 'api/20-loop.yaml': ENDLESS });
    const normal = makeRepo({ 'api/d.yaml': cm('fine') });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    const events: string[] = [];
    const hanging = renderError(renderer.render(renderInput(looping))).then((error) => {
      events.push('loop stopped');
      return error;
    });
    const other = await renderer.render(renderInput(normal));
    events.push('other rendered');
    const error = await hanging;
    const elapsed = performance.now() - started;
    delay.disable();

    expect(error.code).toBe('render_timeout');
    expect(error.message).toMatch(/did not finish within 2 s \(KEELSON_RENDER_TIMEOUT\); it was stopped in api\/20-loop\.yaml/);
    expect(other.objects.map((o) => o.metadata.name)).toEqual(['fine']);
    expect(events).toEqual(['other rendered', 'loop stopped']);
    // Rendering on the event loop would delay it by the whole render; here the longest delay is
    // a small part of it (a ratio, so a slow machine does not fail the test).
    expect(delay.max / 1e6).toBeLessThan(elapsed * 0.25);
  });

  it('a caller’s AbortSignal stops a render at once', async () => {
    const renderer = rendererWith({ timeoutMs: 600_000 });
    const controller = new AbortController();
    const render = renderer.render(renderInput(makeRepo({ 'api/loop.yaml': ENDLESS })), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('lease lost')), 100);
    await expect(render).rejects.toMatchObject({ kind: 'transient', code: 'render_aborted' });
  });
});

describe('output', () => {
  it.each([
    { title: 'printed values', template: `${DOUBLED}{% for i in range(1024) %}{{ s }}{% endfor %}\n` },
    { title: 'template text marked safe', template: `${DOUBLED}{% for i in range(1024) %}{{ s | safe }}{% endfor %}\n` },
    { title: 'literal text in a loop', template: `{% for i in range(2097152) %}${'x'.repeat(1024)}{% endfor %}\n` },
    { title: 'a captured block', template: `${DOUBLED}{% set big %}{% for i in range(1024) %}{{ s }}{% endfor %}{% endset %}\n` },
  ])('2 GiB of $title fails at the 10 MiB cap; keelson stays up and its memory bounded', async ({ template }) => {
    const renderer = rendererWith({});
    const before = process.memoryUsage().rss;
    const error = await renderError(renderer.render(renderInput(makeRepo({ 'api/big.yaml': template }))));
    expect(error.code).toBe('render_too_large');
    expect(error.message).toMatch(/^Rendering stopped at api\/big\.yaml:1:\d+: the rendered output exceeds the limit of 10 MiB\. .*KEELSON_RENDER_MAX_BYTES/);
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * MiB);
    // and the renderer goes on
    const { objects } = await renderer.render(renderInput(makeRepo({ 'api/d.yaml': cm('after') })));
    expect(objects).toHaveLength(1);
  });

  it('more objects than the cap fail as they are parsed', async () => {
    const renderer = rendererWith({ maxObjects: 5 });
    const template = '{% for i in range(1000) %}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{{ i }}\n{% endfor %}';
    const error = await renderError(renderer.render(renderInput(makeRepo({ 'api/many.yaml': template }))));
    expect(error.code).toBe('render_too_large');
    expect(error.message).toMatch(/^api\/many\.yaml:\d+: the templates render more than 5 objects, the limit \(KEELSON_RENDER_MAX_OBJECTS\)/);
  });

  it('templates larger than the cap are not read at all', async () => {
    const renderer = rendererWith({ maxBytes: 64 * 1024 });
    const root = makeRepo({ 'api/d.yaml': `${cm('c')}{% include "partials/huge.njk" %}\n`, 'partials/huge.njk': `# ${'x'.repeat(100 * 1024)}\n` });
    const error = await renderError(renderer.render(renderInput(root)));
    expect(error.code).toBe('render_too_large');
    expect(error.message).toMatch(/Reading "partials\/huge\.njk" takes the templates and values files of this render over 64 KiB/);
  });
});

describe('memory', () => {
  it.each([
    { title: 'many small allocations', template: '{% set a = [] %}{% for i in range(100000) %}{% set _ = a.push(range(1000)) %}{% endfor %}{{ a | length }}\n' },
    // one 100 MB flat string: a worker thread would abort the whole process here (nodejs/node#47224)
    { title: 'one allocation larger than the heap', template: '{% set s = "x".repeat(100000000) | upper %}{{ s | length }}\n' },
  ])('a render exhausting its heap by $title fails alone with render_out_of_memory', async ({ template }) => {
    const renderer = rendererWith({ maxHeapBytes: 32 * MiB, timeoutMs: 60_000 });
    const error = await renderError(renderer.render(renderInput(makeRepo({ 'api/hungry.yaml': template }))));
    expect(error.code).toBe('render_out_of_memory');
    expect(error.message).toMatch(/ran out of its memory limit of 32 MiB \(KEELSON_RENDER_MAX_HEAP\) in api\/hungry\.yaml/);
    const { objects } = await renderer.render(renderInput(makeRepo({ 'api/d.yaml': cm('after') })));
    expect(objects).toHaveLength(1);
  });
});
