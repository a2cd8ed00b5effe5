// What a render produces and refuses: which files, variables and values layering, labels, errors
// with file and line, path confinement, and the built-in template. Ops repo renders go through the
// real render process (renderer.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { createRenderer, DEFAULT_RENDER_LIMITS, type RenderInput, type RenderResult } from '../../src/render/renderer.ts';
import { cleanupRepos, cm, DEPLOYMENT_ID, makeRepo, outsideFile, renderError, renderInput } from './fixtures.ts';

const renderer = createRenderer();
const render = (input: RenderInput) => renderer.render(input);

afterAll(async () => {
  await renderer.close();
  cleanupRepos();
});

const input = renderInput;

const names = (result: RenderResult) => result.objects.map((o) => `${o.kind}/${o.metadata.name}`);

describe('choosing what to render', () => {
  it.each([
    {
      title: 'a file named by manifest_path',
      files: { 'api/deploy.yaml': cm('one'), 'api/other.yaml': cm('two') },
      basePath: '',
      manifestPath: 'api/deploy.yaml',
      expectFiles: ['api/deploy.yaml'],
      expectObjects: ['ConfigMap/one'],
    },
    {
      title: 'a directory, in name order, skipping values files, non-manifests and subdirectories',
      files: {
        'api/b.yaml': cm('b'),
        'api/a.yml': cm('a'),
        'api/10-late.yaml': cm('late'),
        'api/01-early.njk': cm('early'),
        'api/values.yaml': 'x: 1\n',
        'api/values-prod.yaml': 'x: 2\n',
        'api/values-staging.yml': 'x: 3\n',
        'api/README.md': '# not a manifest\n',
        'api/nested/c.yaml': cm('nested'),
      },
      basePath: '',
      manifestPath: 'api',
      expectFiles: ['api/01-early.njk', 'api/10-late.yaml', 'api/a.yml', 'api/b.yaml'],
      expectObjects: ['ConfigMap/early', 'ConfigMap/late', 'ConfigMap/a', 'ConfigMap/b'],
    },
    {
      title: 'the project name when manifest_path is null',
      files: { 'api/x.yaml': cm('from-project-dir'), 'web/x.yaml': cm('wrong') },
      basePath: '',
      manifestPath: null,
      expectFiles: ['api/x.yaml'],
      expectObjects: ['ConfigMap/from-project-dir'],
    },
    {
      title: 'inside ops_repos.path, reported repo-relative',
      files: { 'deploy/k8s/api/x.yaml': cm('under-base'), 'api/x.yaml': cm('wrong') },
      basePath: 'deploy/k8s',
      manifestPath: null,
      expectFiles: ['deploy/k8s/api/x.yaml'],
      expectObjects: ['ConfigMap/under-base'],
    },
    {
      title: 'several documents per file, skipping empty and comment-only ones',
      files: { 'api/all.yaml': `---\n# just a comment\n---\n${cm('first')}---\n---\n${cm('second')}\n---\n` },
      basePath: '',
      manifestPath: null,
      expectFiles: ['api/all.yaml'],
      expectObjects: ['ConfigMap/first', 'ConfigMap/second'],
    },
  ])('renders $title', async ({ files, basePath, manifestPath, expectFiles, expectObjects }) => {
    const root = makeRepo(files);
    const result = await render(input(root, { basePath, manifestPath }));
    expect(result.files).toEqual(expectFiles);
    expect(names(result)).toEqual(expectObjects);
  });
});

describe('template variables and values', () => {
  it('passes image_ref, project, environment, namespace, deployment_id and values', async () => {
    const root = makeRepo({
      'api/d.yaml': [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: "{{ project }}-{{ environment }}"',
        'data:',
        '  image: "{{ image_ref }}"',
        '  ns: "{{ namespace }}"',
        '  id: "{{ deployment_id }}"',
        '  greeting: "{{ values.greeting }}"',
        '',
      ].join('\n'),
    });
    const result = await render(input(root, { valuesOverride: { greeting: 'hi' } }));
    expect(result.objects[0]).toMatchObject({
      metadata: { name: 'api-prod' },
      data: { image: 'registry.example/api:1.2.3', ns: 'api-prod', id: DEPLOYMENT_ID, greeting: 'hi' },
    });
  });

  it('layers root values < directory values < values-<environment> < values_override, deep-merged', async () => {
    const root = makeRepo({
      'values.yaml': 'a: root\nnested: { x: root, y: root, keep: root }\nlist: [1, 2]\nonlyRoot: true\n',
      'api/values.yaml': 'a: dir\nnested: { y: dir }\n',
      'api/values-prod.yaml': 'nested: { x: prod }\nlist: [3]\n',
      'api/values-staging.yaml': 'a: staging\n',
      'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  json: {{ values | dump | dump }}\n',
    });
    const result = await render(input(root, { valuesOverride: { nested: { y: 'override' }, extra: [{ k: 1 }] } }));
    const expected = {
      a: 'dir',
      nested: { x: 'prod', y: 'override', keep: 'root' },
      list: [3],
      onlyRoot: true,
      extra: [{ k: 1 }],
    };
    expect(result.values).toEqual(expected);
    expect(JSON.parse((result.objects[0]?.data as { json: string }).json)).toEqual(expected);
  });

  it('uses the file’s directory for values when manifest_path is a file', async () => {
    const root = makeRepo({
      'api/values-prod.yaml': 'who: prod-file\n',
      'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "{{ values.who }}"\n',
    });
    const result = await render(input(root, { manifestPath: 'api/d.yaml' }));
    expect(result.objects[0]?.metadata.name).toBe('prod-file');
  });

  it('does not modify the values_override it was given', async () => {
    const root = makeRepo({ 'values.yaml': 'n: { a: 1 }\n', 'api/d.yaml': cm('x') });
    const override = { n: { b: 2 } };
    await render(input(root, { valuesOverride: override }));
    expect(override).toEqual({ n: { b: 2 } });
  });
});

describe('labels', () => {
  it('adds keelson labels to metadata.labels only, never to pod templates, selectors or namespace', async () => {
    const root = makeRepo({
      'api/d.yaml': [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: api',
        '  labels: { team: core, app.kubernetes.io/managed-by: helm }',
        'spec:',
        '  selector: { matchLabels: { app: api } }',
        '  template:',
        '    metadata: { labels: { app: api } }',
        '    spec: { containers: [{ name: api, image: "{{ image_ref }}" }] }',
        '---',
        'apiVersion: v1',
        'kind: Namespace',
        'metadata: { name: extra }',
        '',
      ].join('\n'),
    });
    const [deployment, namespace] = (await render(input(root))).objects;
    expect(deployment?.metadata.labels).toEqual({ team: 'core', 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': DEPLOYMENT_ID });
    expect(deployment?.spec).toEqual({
      selector: { matchLabels: { app: 'api' } },
      template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'registry.example/api:1.2.3' }] } },
    });
    expect(deployment?.metadata.namespace).toBeUndefined();
    expect(namespace?.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': DEPLOYMENT_ID });
  });

  it('keeps a namespace the template set', async () => {
    const root = makeRepo({ 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c, namespace: "{{ namespace }}" }\n' });
    expect((await render(input(root))).objects[0]?.metadata.namespace).toBe('api-prod');
  });
});

describe('errors name the file and line', () => {
  it.each([
    {
      title: 'an undefined variable',
      files: { 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ nope }}\n' },
      code: 'render_template',
      message: /api\/d\.yaml:4:\d+: .*undefined value in `\{\{ nope \}\}`/,
    },
    {
      title: 'an undefined value',
      files: { 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: {{ values.missing.deep }}\n' },
      code: 'render_template',
      message: /api\/d\.yaml:6:\d+: .*undefined/,
    },
    {
      title: 'an undefined variable in an included file (names the included file)',
      files: { 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\n{% include "partials/meta.njk" %}\n', 'partials/meta.njk': 'metadata:\n\n  name: {{ missing_name }}\n' },
      code: 'render_template',
      message: /partials\/meta\.njk:3:\d+: .*undefined value in `\{\{ missing_name \}\}`/,
    },
    {
      title: 'a template syntax error',
      files: { 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {% if %}\n' },
      code: 'render_template',
      message: /api\/d\.yaml:4:\d+: /,
    },
    {
      title: 'invalid YAML',
      files: { 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  bad: compact: mapping\n' },
      code: 'render_yaml',
      message: /Invalid YAML at api\/d\.yaml:5:\d+/,
    },
    {
      title: 'a duplicate key',
      files: { 'api/d.yaml': `${cm('first')}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n` },
      code: 'render_yaml',
      message: /Invalid YAML at api\/d\.yaml:11:\d+ .*(unique|Map keys)/,
    },
    {
      title: 'invalid YAML in a values file',
      files: { 'api/values.yaml': 'ok: 1\nbroken: [\n', 'api/d.yaml': cm('c') },
      code: 'render_yaml',
      message: /Invalid YAML at api\/values\.yaml:\d+/,
    },
    {
      title: 'a values file that is not a mapping',
      files: { 'values.yaml': '- a\n- b\n', 'api/d.yaml': cm('c') },
      code: 'render_yaml',
      message: /values\.yaml:1: a values file must be a mapping/,
    },
    {
      title: 'a missing apiVersion',
      files: { 'api/d.yaml': `${cm('fine')}---\n# second document\nkind: ConfigMap\nmetadata: { name: x }\n` },
      code: 'render_invalid_object',
      message: /api\/d\.yaml:8: the object lacks apiVersion/,
    },
    {
      title: 'a missing kind',
      files: { 'api/d.yaml': 'apiVersion: v1\nmetadata: { name: x }\n' },
      code: 'render_invalid_object',
      message: /api\/d\.yaml:1: the object lacks kind/,
    },
    {
      title: 'a missing metadata.name',
      files: { 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { labels: { a: b } }\n' },
      code: 'render_invalid_object',
      message: /api\/d\.yaml:1: the object lacks metadata\.name/,
    },
    {
      title: 'a document that is not a mapping',
      files: { 'api/d.yaml': '- apiVersion: v1\n' },
      code: 'render_invalid_object',
      message: /api\/d\.yaml:1: a document must be a Kubernetes object/,
    },
    {
      title: 'a label value that is not a string',
      files: { 'api/d.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x, labels: { version: 2 } }\n' },
      code: 'render_invalid_object',
      message: /metadata\.labels\.version must be a string/,
    },
    {
      title: 'the same object twice',
      files: { 'api/a.yaml': cm('same'), 'api/b.yaml': `# b\n${cm('same')}` },
      code: 'render_invalid_object',
      message: /api\/b\.yaml:2: ConfigMap "same" is defined twice \(first at api\/a\.yaml:1\)/,
    },
    {
      title: 'a manifest directory that renders nothing',
      files: { 'api/empty.yaml': '# nothing yet\n---\n' },
      code: 'render_invalid_object',
      message: /produced no Kubernetes objects/,
    },
    {
      title: 'a missing manifest path',
      files: { 'web/d.yaml': cm('c') },
      code: 'render_path_missing',
      message: /"api" does not exist/,
    },
    {
      title: 'a manifest directory without manifests',
      files: { 'api/values.yaml': 'a: 1\n', 'api/README.md': 'x' },
      code: 'render_path_missing',
      message: /has no \*\.yaml/,
    },
    {
      title: 'a missing include',
      files: { 'api/d.yaml': `${cm('c')}{% include "partials/nothere.njk" %}\n` },
      code: 'render_template',
      message: /Template error at api\/d\.yaml.*template not found: partials\/nothere\.njk/,
    },
  ])('$title → $code', async ({ files, code, message }) => {
    const error = await renderError(render(input(makeRepo(files))));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/\. (Fix|Create|Add|Remove)/);
  });
});

describe('nothing outside the ops repo is read', () => {
  const secret = outsideFile('apiVersion: v1\nkind: Secret\nmetadata: { name: stolen }\n');

  it.each([
    { title: 'manifest_path ../../etc', files: { 'api/d.yaml': cm('c') }, links: {}, overrides: { manifestPath: '../../etc' } },
    { title: 'manifest_path climbing out of ops_repos.path', files: { 'deploy/api/d.yaml': cm('c'), 'other/d.yaml': cm('c') }, links: {}, overrides: { basePath: 'deploy', manifestPath: '../other' } },
    { title: 'an absolute manifest_path', files: { 'api/d.yaml': cm('c') }, links: {}, overrides: { manifestPath: '/etc' } },
    { title: 'an absolute manifest_path to the secret', files: {}, links: {}, overrides: { manifestPath: secret } },
    { title: 'ops_repos.path ../..', files: { 'api/d.yaml': cm('c') }, links: {}, overrides: { basePath: '../..' } },
    { title: 'ops_repos.path absolute', files: { 'api/d.yaml': cm('c') }, links: {}, overrides: { basePath: '/tmp' } },
    { title: 'a manifest dir that is a symlink out', files: {}, links: { api: '/etc' }, overrides: {} },
    { title: 'a manifest file that is a symlink out', files: {}, links: { 'api/d.yaml': secret }, overrides: {} },
    { title: 'a symlink out among a directory’s manifests', files: { 'api/a.yaml': cm('a') }, links: { 'api/b.yaml': secret }, overrides: {} },
    { title: 'a values file that is a symlink out', files: { 'api/d.yaml': cm('c') }, links: { 'values.yaml': secret }, overrides: {} },
    { title: 'an environment values file that is a symlink out', files: { 'api/d.yaml': cm('c') }, links: { 'api/values-prod.yaml': secret }, overrides: {} },
    { title: 'include ../../ escaping the repo', files: { 'api/d.yaml': '{% include "../../../../../../../etc/passwd" %}\n' }, links: {}, overrides: {} },
    { title: 'relative include ./../.. escaping the repo', files: { 'api/d.yaml': '{% include "./../../../../../../etc/hostname" %}\n' }, links: {}, overrides: {} },
    { title: 'include of an absolute path', files: { 'api/d.yaml': `{% include "${secret}" %}\n` }, links: {}, overrides: {} },
    { title: 'include of a symlink out', files: { 'api/d.yaml': '{% include "partials/evil.njk" %}\n' }, links: { 'partials/evil.njk': secret }, overrides: {} },
    { title: 'import escaping the repo', files: { 'api/d.yaml': `{% import "${secret}" as x %}\n${cm('c')}` }, links: {}, overrides: {} },
    { title: 'include of .git/config (holds the remote credentials)', files: { '.git/config': '[remote "origin"]\n  url = https://u:t@h/r\n', 'api/d.yaml': '{% include ".git/config" %}\n' }, links: {}, overrides: {} },
    { title: 'include of a symlink into .git', files: { '.git/config': 'x', 'api/d.yaml': '{% include "partials/cfg" %}\n' }, links: { 'partials/cfg': '../.git/config' }, overrides: {} },
  ])('refuses $title', async ({ files, links, overrides }) => {
    const error = await renderError(render(input(makeRepo(files, links), overrides)));
    expect(error.code).toBe('render_path_unsafe');
    expect(error.message).toMatch(/refused: .*(outside|absolute|\.git)/);
    expect(error.message).not.toContain('stolen');
  });

  it('allows includes and imports inside the repo, root-relative and relative, and symlinks that stay inside', async () => {
    const root = makeRepo(
      {
        'partials/meta.njk': 'metadata:\n  name: {{ name }}\n  labels: { tier: "{{ tier }}" }\n',
        'macros/cm.njk': '{% macro configmap(name) %}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n{% endmacro %}',
        'api/_local.njk': '{% set tier = "backend" %}',
        'api/a.yaml': 'apiVersion: v1\nkind: ConfigMap\n{% set name = project + "-a" %}{% set tier = "web" %}{% include "partials/meta.njk" %}',
        'api/b.yaml': '{% import "../macros/cm.njk" as m %}{{ m.configmap(project + "-b") }}',
        'shared/c.yaml': cm('linked'),
        'api/d.yaml': '{% include "partials/optional.njk" ignore missing %}',
      },
      { 'api/c.yaml': '../shared/c.yaml' },
    );
    const result = await render(input(root));
    expect(result.files).toEqual(['api/_local.njk', 'api/a.yaml', 'api/b.yaml', 'api/c.yaml', 'api/d.yaml']);
    expect(names(result)).toEqual(['ConfigMap/api-a', 'ConfigMap/api-b', 'ConfigMap/linked']);
    expect(result.objects[0]?.metadata.labels?.tier).toBe('web');
  });
});

describe('the built-in template (no ops repo)', () => {
  it('renders a Deployment and a Service with defaults', async () => {
    const result = await render(input(null));
    expect(result.files).toEqual([]);
    expect(result.values).toEqual({ replicas: 1, port: 8080, env: {} });
    const [deployment, service] = result.objects;
    const selector = { 'app.kubernetes.io/name': 'api' };
    expect(deployment).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'api',
        namespace: 'api-prod',
        labels: { ...selector, 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': DEPLOYMENT_ID },
      },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: selector },
          spec: { containers: [{ name: 'api', image: 'registry.example/api:1.2.3', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }], env: [] }] },
        },
      },
    });
    expect(service).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'api',
        namespace: 'api-prod',
        labels: { ...selector, 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': DEPLOYMENT_ID },
      },
      spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }] },
    });
  });

  it('uses values.replicas, values.port and values.env', async () => {
    const result = await render(input(null, { valuesOverride: { replicas: 3, port: 9000, env: { LOG_LEVEL: 'debug', WORKERS: 4, FLAG: true, TRICKY: 'a: b\n- c' } } }));
    const [deployment, service] = result.objects as unknown as [Record<string, any>, Record<string, any>]; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(deployment.spec.replicas).toBe(3);
    const container = deployment.spec.template.spec.containers[0];
    expect(container.ports).toEqual([{ name: 'http', containerPort: 9000, protocol: 'TCP' }]);
    expect(container.env).toEqual([
      { name: 'LOG_LEVEL', value: 'debug' },
      { name: 'WORKERS', value: '4' },
      { name: 'FLAG', value: 'true' },
      { name: 'TRICKY', value: 'a: b\n- c' },
    ]);
    expect(service.spec.ports).toEqual([{ name: 'http', port: 9000, targetPort: 'http', protocol: 'TCP' }]);
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
  });

  it.each([
    [{ replicas: 'three' }, /values\.replicas/],
    [{ replicas: -1 }, /values\.replicas/],
    [{ port: 70000 }, /values\.port/],
    [{ env: { A: { nested: true } } }, /values\.env\.A/],
    [{ env: ['A=1'] }, /values\.env/],
  ])('refuses invalid values %j as terminal', async (valuesOverride, message) => {
    const error = await renderError(render(input(null, { valuesOverride })));
    expect(error.code).toBe('render_template');
    expect(error.message).toMatch(message);
  });
});

describe('render processes', () => {
  it('serve one ops repo: reused for its next render, never for another repo, never after a render it could not report', async () => {
    const own = createRenderer({ ...DEFAULT_RENDER_LIMITS, timeoutMs: 3_000 });
    try {
      const template = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  n: "{{ values.n }}"\n';
      const a = makeRepo({ 'api/d.yaml': template });
      const b = makeRepo({ 'api/d.yaml': template });
      const c = makeRepo({ 'bad/d.yaml': cm('{{ nope }}'), 'good/d.yaml': cm('fine'), 'loop/d.yaml': '{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}' });
      const data = async (root: string, n: number) => (await own.render(input(root, { valuesOverride: { n } }))).objects[0]?.data;

      expect(await data(a, 1)).toEqual({ n: '1' });
      expect(await data(a, 2)).toEqual({ n: '2' });
      expect(own.stats().rendersInReusedProcess).toBe(1);
      expect(await data(b, 3)).toEqual({ n: '3' });
      expect(own.stats().rendersInReusedProcess).toBe(1);
      // a refusal the process reported leaves it sound: the next render of c reuses it
      expect((await renderError(own.render(input(c, { manifestPath: 'bad' })))).code).toBe('render_template');
      expect((await own.render(input(c, { manifestPath: 'good' }))).objects).toHaveLength(1);
      expect(own.stats().rendersInReusedProcess).toBe(2);
      // a timeout does not: the process is killed
      expect((await renderError(own.render(input(c, { manifestPath: 'loop' })))).code).toBe('render_timeout');
      expect((await own.render(input(c, { manifestPath: 'good' }))).objects).toHaveLength(1);
      expect(own.stats().rendersInReusedProcess).toBe(3);
      expect(await data(a, 4)).toEqual({ n: '4' });
      expect(own.stats().rendersInReusedProcess).toBe(4);
    } finally {
      await own.close();
    }
  });
});
