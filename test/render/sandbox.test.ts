// Templates written by whoever can push to an ops repo cannot run JavaScript: the published
// nunjucks escapes (and variants with computed keys) fail with template_forbidden naming the file
// and line, names nunjucks would paste into generated code are refused, and the render process
// itself holds nothing worth reaching (second wall).
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRenderer, DEFAULT_RENDER_LIMITS, renderProcessOptions } from '../../src/render/renderer.ts';
import { cleanupRepos, makeRepo, outsideFile, renderError, renderInput } from './fixtures.ts';

const renderer = createRenderer();

afterAll(async () => {
  await renderer.close();
  cleanupRepos();
});

function template(expression: string): Record<string, string> {
  return { 'api/d.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${expression}\n` };
}

// Published server-side template injection payloads for nunjucks (SSTI write-ups, nunjucks
// issues #1048 and PR #338), and variants that compute the member name at run time.
const PAYLOADS = [
  `{{ range.constructor("return global.process.mainModule.require('child_process').execSync('id')")() }}`,
  `{{ range.constructor("return process.binding('spawn_sync')")() }}`,
  `{{ cycler.constructor("return process")() }}`,
  `{{ joiner.constructor("return process")() }}`,
  `{{ constructor.constructor("return this")() }}`,
  `{{ this.constructor.constructor("return process.env")() }}`,
  `{{ a.constructor.__proto__.constructor("process.kill()")() }}`,
  `{{ "".constructor.constructor("return process")() }}`,
  `{{ [].constructor.constructor("return process")() }}`,
  `{{ (1).constructor.constructor("return process")() }}`,
  `{{ values.constructor.constructor("return process")() }}`,
  `{{ values.__proto__ }}`,
  `{{ values.__lookupGetter__("__proto__") }}`,
  `{{ range.prototype }}`,
  `{{ "x"["constr" + "uctor"]["constr" ~ "uctor"]("return process")() }}`,
  `{% set c = "constr" ~ "uctor" %}{{ range[c][c]("return process")() }}`,
  `{{ values["__pro" ~ "to__"] }}`,
  `{{ values[["constructor"] | first] }}`,
  `{{ range.call(null, 3) }}`,
  `{{ range.apply(null, [3]) }}`,
  `{{ range.bind(null)(3) }}`,
  `{% macro m() %}{% endmacro %}{{ m.constructor("return process")() }}`,
  `{% for i in [1] %}{{ loop.constructor }}{% endfor %}`,
  `{{ cycler(1).next.constructor("return process")() }}`,
  `{{ process.env }}`,
  `{{ global.process }}`,
  `{{ globalThis }}`,
  `{{ require("child_process") }}`,
  `{{ Function("return process")() }}`,
  `{% set __proto__ = range %}{{ call }}`,
  `{% set constructor = 1 %}`,
  `{{ a"&&Function\`return\\x20process\\x2eexit\\x28\\x29\`\`\`&&" }}`,
];

describe('published nunjucks escapes are refused', () => {
  // one repo, one directory per payload: a refusal leaves the render process sound, so the
  // payloads share one (as one repo's renders would)
  const payloads = PAYLOADS.map((payload, index) => ({ payload, dir: `p${index}` }));
  let root: string;
  beforeAll(() => {
    root = makeRepo(Object.fromEntries(payloads.map(({ payload, dir }) => [`${dir}/d.yaml`, template(payload)['api/d.yaml']])));
  });

  it.each(payloads)('$payload → template_forbidden', async ({ dir }) => {
    const error = await renderError(renderer.render(renderInput(root, { manifestPath: dir })));
    expect(error.code).toBe('template_forbidden');
    expect(error.message).toMatch(new RegExp(`^Template refused at ${dir}/d\\.yaml:6:\\d+: .+\\. Remove it from the template in the ops repo\\.$`));
  });

  it('writes names of called expressions into generated code without a way out of the string', async () => {
    // nunjucks escapes only `"` in this name; a key ending in a backslash used to end the string
    // early and turn the rest of the expression into code (a SyntaxError at best)
    const error = await renderError(renderer.render(renderInput(makeRepo(template('{{ values["\\\\"](") + (PWNED) + (") }}')))));
    expect(error.code).toBe('render_template');
    expect(error.message).toMatch(/Unable to call `values\["\?"\]`, which is undefined or falsey/);
  });

  it('still lets templates use data, loops, macros, string and list methods', async () => {
    const root = makeRepo(
      template(
        '"{% set parts = values.csv.split(",") %}{% set _ = parts.push("d") %}{{ parts | join("+") | upper }} {{ values.csv.startsWith("a") }} {{ values.n.toFixed(2) }} {{ r/^a/.test(values.csv) }} {{ parts.length }} {{ values.obj.hasOwnProperty | default(\'absent\') }}"',
      ),
    );
    const { objects } = await renderer.render(renderInput(root, { valuesOverride: { csv: 'a,b,c', n: 1.5, obj: {} } }));
    // an inherited member that is not an allowed method reads as undefined
    expect(objects[0]?.data).toEqual({ a: 'A+B+C+D true 1.50 true 4 absent' });
  });
});

describe('the render process holds nothing worth reaching', () => {
  it('cannot make functions from text, reach bindings, signal, read outside keelson, start processes or fetch; its environment is empty', async () => {
    const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
    const secret = outsideFile('DATABASE_URL=postgres://keelson:secret@db/keelson\n');
    process.env.KEELSON_RENDER_CANARY = 'must not reach the render process';
    const child = fork(path.join(fixtures, 'lockdownProbe.ts'), [secret], {
      ...renderProcessOptions(DEFAULT_RENDER_LIMITS, [fixtures]),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const results = await new Promise<Record<string, string>>((resolve, reject) => {
      child.once('message', (message) => resolve(message as Record<string, string>));
      child.once('exit', (code) => reject(new Error(`the probe exited (${code}) without reporting: ${stderr}`)));
    });
    delete process.env.KEELSON_RENDER_CANARY;
    expect(results).toEqual({
      'Function from a function': 'refused: Creating functions from text is disabled in the render process.',
      'Function from an async function': 'refused: Creating functions from text is disabled in the render process.',
      'Function from a generator': 'refused: Creating functions from text is disabled in the render process.',
      eval: 'refused: eval is disabled in the render process.',
      'process.getBuiltinModule': 'refused: process.getBuiltinModule is disabled in the render process.',
      'process.binding': 'refused: process.binding is disabled in the render process.',
      'process.dlopen': 'refused: process.dlopen is disabled in the render process.',
      'process.kill': 'refused: process.kill is disabled in the render process.',
      'environment variables': 'refused: empty',
      'reading a file outside keelson': 'refused: ERR_ACCESS_DENIED',
      'starting a process': 'refused: ERR_ACCESS_DENIED',
      fetch: expect.stringMatching(/^refused: .*not a function/),
    });
  });
});
