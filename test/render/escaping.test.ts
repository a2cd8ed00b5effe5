// How `{{ value }}` lands in YAML: as one scalar, wherever it is printed, with its type where it is
// a whole plain scalar; structures only through toyaml/tojson; the opt-outs; and a clear error
// where a value cannot be printed safely. Most cases share one render (each render is a process).
import { afterAll, describe, expect, it } from 'vitest';
import { createRenderer } from '../../src/render/renderer.ts';
import { cleanupRepos, makeRepo, renderError, renderInput } from './fixtures.ts';

const renderer = createRenderer();

afterAll(async () => {
  await renderer.close();
  cleanupRepos();
});

/** One object of a made-up kind: the renderer checks apiVersion, kind and metadata.name only. */
function example(body: string): string {
  return `apiVersion: example.keelson.dev/v1\nkind: Example\nmetadata:\n  name: example\n${body}`;
}

async function renderSpec(body: string, values: Record<string, unknown>, files: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const root = makeRepo({ 'api/example.yaml': example(body), ...files });
  const { objects } = await renderer.render(renderInput(root, { valuesOverride: values }));
  expect(objects).toHaveLength(1);
  return objects[0]?.spec as Record<string, unknown>;
}

const HOSTILE = [
  'line1\nline2',
  'a\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn',
  'key: value # comment',
  '"double" and \'single\' quotes, a \\ backslash',
  '{ flow: [mapping] }, ]',
  '&anchor *alias !!binary !tag',
  ' leading and trailing spaces ',
  'separators \u2028 \u2029 nel \u0085 nul \u0000 bell \u0007',
  '- item',
  '|\n  block',
  '',
];

// position → [template text printing values.v[i], expected value read back]
const POSITIONS: Record<string, [(i: number) => string, (v: string) => unknown]> = {
  plain: [(i) => `{{ values.v[${i}] }}`, (v) => v],
  doubleQuoted: [(i) => `"{{ values.v[${i}] }}"`, (v) => v],
  singleQuoted: [(i) => `'{{ values.v[${i}] }}'`, (v) => v],
  insidePlain: [(i) => `pre-{{ values.v[${i}] }}-post`, (v) => `pre-${v}-post`],
  betweenEscapes: [(i) => `"\\t{{ values.v[${i}] }}\\n"`, (v) => `\t${v}\n`],
  blockLiteral: [(i) => `|\n      line {{ values.v[${i}] }}\n      next`, (v) => `line ${v}\nnext\n`],
  folded: [(i) => `>-\n      a {{ values.v[${i}] }}\n      b`, (v) => `a ${v} b`],
  flowMapping: [(i) => `{ k: {{ values.v[${i}] }}, other: x }`, (v) => ({ k: v, other: 'x' })],
  flowSequence: [(i) => `[{{ values.v[${i}] }}, x]`, (v) => [v, 'x']],
  key: [(i) => `\n      {{ values.v[${i}] }}: as-key`, (v) => ({ [v]: 'as-key' })],
  afterComment: [(i) => `kept # {{ values.v[${i}] }}`, () => 'kept'],
};

describe('a printed string is one scalar wherever it is printed', () => {
  it('reads back exactly, in every position, for values full of YAML syntax', async () => {
    const lines = HOSTILE.flatMap((_, i) => Object.entries(POSITIONS).map(([position, [text]]) => `  ${position}${i}: ${text(i)}`));
    const spec = await renderSpec(`spec:\n${lines.join('\n')}\n`, { v: HOSTILE });
    const expected = Object.fromEntries(HOSTILE.flatMap((value, i) => Object.entries(POSITIONS).map(([position, [, read]]) => [`${position}${i}`, read(value)])));
    expect(spec).toEqual(expected);
  });
});

describe('types', () => {
  it('keep their type as a whole plain scalar; a string that looks like another type stays a string', async () => {
    const values = {
      int: 3,
      negative: -2,
      float: 1.5,
      yes: true,
      no: false,
      strings: ['3', '1.50', 'true', 'False', 'yes', 'null', '~', '1e3', '0x1F', '0o17', '.inf', '-.nan', '2024-01-01', ''],
    };
    const stringLines = values.strings.map((_, i) => `  s${i}: {{ values.strings[${i}] }}`);
    const spec = await renderSpec(
      [
        'spec:',
        '  int: {{ values.int }}',
        '  negative: {{ values.negative }}',
        '  float: {{ values.float }}',
        '  yes: {{ values.yes }}',
        '  no: {{ values.no }}',
        '  computed: {{ values.int * 2 + 1 }}',
        '  intQuoted: "{{ values.int }}"',
        '  intInsidePlain: {{ values.int }}00',
        '  twoValues: {{ values.int }}{{ values.int }}',
        '  toInt: {{ values.strings[0] | int }}',
        ...stringLines,
        '',
      ].join('\n'),
      values,
    );
    expect(spec).toEqual({
      int: 3,
      negative: -2,
      float: 1.5,
      yes: true,
      no: false,
      computed: 7,
      intQuoted: '3',
      intInsidePlain: '300',
      twoValues: '33',
      toInt: 3,
      ...Object.fromEntries(values.strings.map((value, i) => [`s${i}`, value])),
    });
  });
});

describe('structures are emitted on purpose', () => {
  const structure = { list: [1, 'two', true, null, HOSTILE[1]], nested: { 'key: with colon': HOSTILE[0], empty: {}, none: [] } };

  it('toyaml(indent) and tojson (and dump, its old name) write a value as YAML that reads back exactly', async () => {
    const root = makeRepo({
      'api/a.yaml': example('spec:\n  block: {{ values.s | toyaml(4) }}\n  json: {{ values.s | tojson }}\n  dumped: {{ values.s | dump }}\n  string: {{ values.s.list[4] | tojson }}\n'),
      'api/b.yaml': '{{ values.doc | toyaml }}\n',
    });
    const doc = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'from-values' }, data: { k: HOSTILE[7] } };
    const { objects } = await renderer.render(renderInput(root, { valuesOverride: { s: structure, doc } }));
    expect(objects[0]?.spec).toEqual({ block: structure, json: structure, dumped: structure, string: HOSTILE[1] });
    expect(objects[1]).toMatchObject(doc);
  });
});

describe('template text stays template text', () => {
  it('macros, captures and includes shape the YAML; the values inside them are still escaped', async () => {
    const root = makeRepo({
      'api/example.yaml': [
        '{% import "partials/macros.njk" as m %}',
        '{% set labels %}',
        'app: {{ values.evil }}',
        'tier: web',
        '{% endset %}',
        'apiVersion: example.keelson.dev/v1',
        'kind: Example',
        'metadata:',
        '  name: example',
        '  labels:',
        '    {{ labels | indent(4) }}',
        'spec:',
        '  {{ m.pair("fromMacro", values.evil) }}',
        '  captured: {{ labels.trim() }}',
        '  replaced: {{ m.greeting() | replace("NAME", values.evil) }}',
        '  included: {% include "partials/value.njk" %}',
        '  htmlEscapeDoesNothing: {{ values.evil | e }}',
        '',
      ].join('\n'),
      'partials/macros.njk': '{% macro pair(key, value) %}{{ key }}: {{ value }}{% endmacro %}{% macro greeting() %}hello NAME{% endmacro %}',
      'partials/value.njk': '{{ values.evil }}',
    });
    const evil = HOSTILE[1] as string;
    const { objects } = await renderer.render(renderInput(root, { valuesOverride: { evil } }));
    expect(objects).toHaveLength(1);
    expect(objects[0]?.metadata.labels).toMatchObject({ app: evil, tier: 'web' });
    expect(objects[0]?.spec).toEqual({
      fromMacro: evil,
      captured: `app: ${evil}\ntier: web`,
      replaced: `hello ${evil}`,
      included: evil,
      htmlEscapeDoesNothing: evil,
    });
  });
});

describe('opting out', () => {
  it('`| safe` prints a value as YAML text, so it may shape the document (the template author’s choice)', async () => {
    const spec = await renderSpec('spec:\n  raw: {{ values.yaml | safe }}\n', { yaml: '{ a: 1, b: [x] }' });
    expect(spec).toEqual({ raw: { a: 1, b: ['x'] } });
  });

  it('a file starting with `{# keelson: autoescape off #}` prints values as text, as before escaping existed; other files do not', async () => {
    const root = makeRepo({
      'api/raw.yaml': `{# keelson: autoescape off #}\n${example('spec:\n  raw: {{ values.yaml }}\n  included: {% include "partials/escaped.njk" %}\n')}`,
      'partials/escaped.njk': '{{ values.yaml }}',
    });
    const { objects } = await renderer.render(renderInput(root, { valuesOverride: { yaml: '{ a: 1 }' } }));
    expect(objects[0]?.spec).toEqual({ raw: { a: 1 }, included: '{ a: 1 }' });
  });
});

describe('what cannot be printed safely is an error, not a guess', () => {
  it.each([
    { title: 'a list printed with {{ }}', body: 'spec: {{ values.list }}', values: { list: [1] }, code: 'render_template', message: /prints a list; .*toyaml/ },
    { title: 'a mapping printed with {{ }}', body: 'spec: {{ values }}', values: {}, code: 'render_template', message: /prints a mapping/ },
    { title: 'a number YAML cannot carry', body: 'spec: {{ 1 / 0 }}', values: {}, code: 'render_template', message: /Infinity/ },
    { title: 'a value as an anchor', body: 'spec:\n  a: &{{ values.s }} x\n', values: { s: 'name' }, code: 'render_yaml', message: /example\.yaml:6: .*as an anchor/ },
    { title: 'a value as a tag', body: 'spec:\n  a: !{{ values.s }} x\n', values: { s: 'tag' }, code: 'render_yaml', message: /as a tag/ },
    { title: 'a value as an alias', body: 'spec:\n  a: &x 1\n  b: *{{ values.s }}\n', values: { s: 'x' }, code: 'render_yaml', message: /(alias|Unresolved)/ },
    { title: 'an explicit tag on a printed value', body: 'spec:\n  a: !!int {{ values.s }}\n', values: { s: '3' }, code: 'render_yaml', message: /tag .* cannot apply to a printed value/ },
    {
      title: 'a filter that changes a placeholder',
      body: 'spec:\n  a: {% filter upper %}{{ values.s }}{% endfilter %}\n',
      values: { s: 'x' },
      code: 'render_template',
      message: /a filter changed the placeholder/,
    },
    { title: 'keys equal once printed', body: 'spec:\n  {{ values.a }}: 1\n  {{ values.b }}: 2\n', values: { a: 'k', b: 'k' }, code: 'render_yaml', message: /"k" appears twice/ },
  ])('$title → $code', async ({ body, values, code, message }) => {
    const error = await renderError(renderer.render(renderInput(makeRepo({ 'api/example.yaml': example(`${body}\n`) }), { valuesOverride: values })));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/api\/example\.yaml/);
  });
});
