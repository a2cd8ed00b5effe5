// Input limits are the same at both doors: every value the API's rules refuse is refused by a
// database constraint that names itself when a pipeline writes it by SQL, and the values the API
// accepts are stored. Table-driven over a corpus per field.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertSafeRepoUrl } from '../../src/opsrepo/repoUrl.ts';
import { branchProblem, imageRefProblem, repoPathProblem, valuesProblem } from '../../src/tenancy/inputRules.ts';
import { patternProblem, type PatternColumn } from '../../src/tenancy/policy.ts';
import { createTestDatabaseClient } from '../helpers.ts';

let client: pg.Client;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ client, close } = await createTestDatabaseClient());
});

afterAll(async () => {
  await close();
});

const nested = (depth: number): unknown => {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = i % 2 ? { x: value } : [value];
  return { root: value };
};

/** The SQLSTATE and constraint of a refused statement, or 'accepted'. */
async function sqlOutcome(text: string, values: unknown[]): Promise<string> {
  await client.query('begin');
  try {
    await client.query(text, values);
    return 'accepted';
  } catch (error) {
    const e = error as { code?: string; constraint?: string; message: string };
    return e.constraint ?? `${e.code}: ${e.message}`;
  } finally {
    await client.query('rollback');
  }
}

const urlProblem = (url: string) => {
  try {
    assertSafeRepoUrl(url, { allowFileRepos: true });
    return null;
  } catch (error) {
    return (error as Error).message;
  }
};

const ZW = '\u200b';
const NBSP = '\u00a0';
const RLO = '\u202e';

describe('image_ref', () => {
  it.each([
    ['NUL', 'registry.example/shop:1\u0000'],
    ['a zero-width space', `registry.example/shop:1${ZW}`],
    ['a no-break space', `registry.example/shop${NBSP}:1`],
    ['a bidi override', `registry.example/${RLO}shop:1`],
    ['a space', 'registry.example/shop :1'],
    ['a tab', 'registry.example/shop:1\t'],
    ['Unicode letters', 'registry.example/shöp:1'],
    ['nothing', ''],
    ['1025 characters', `r/${'a'.repeat(1023)}`],
  ])('refuses %s at both doors', async (_label, value) => {
    expect(imageRefProblem(value)).not.toBeNull();
    const outcome = await sqlOutcome("insert into deployments (project, environment, image_ref) values ('shop', 'x', $1)", [value]);
    // PostgreSQL text cannot hold NUL at all: the driver's refusal is the door there
    expect(outcome).toMatch(value.includes('\u0000') ? /^22021/ : /^deployments_image_ref_(printable|format)$/);
  });

  it.each(['registry.example/shop:1.4.2', 'ghcr.io/acme/web@sha256:' + 'a'.repeat(64), 'x:1', `r/${'a'.repeat(1022)}`])('accepts %s at both doors', async (value) => {
    expect(imageRefProblem(value)).toBeNull();
    expect(await sqlOutcome("insert into deployments (project, environment, image_ref) values ('shop', 'x', $1)", [value])).toBe('accepted');
  });
});

describe('manifest_path and ops_repos.path', () => {
  const bad = [
    ['traversal', '../etc'],
    ['inner traversal', 'apps/../../etc'],
    ['absolute', '/etc/passwd'],
    ['option-looking', '--upload-pack=x'],
    ['backslash', 'apps\\..\\etc'],
    ['.git', 'apps/.GIT/config'],
    ['a newline', 'apps\nx'],
    ['a zero-width space', `apps${ZW}`],
    ['a bidi control', `apps/${RLO}x`],
    ['too long', 'a/'.repeat(513)],
  ];
  it.each(bad)('refuses %s in manifest_path at both doors', async (_label, value) => {
    expect(repoPathProblem(value)).not.toBeNull();
    expect(await sqlOutcome("insert into deployments (project, environment, image_ref, manifest_path) values ('shop', 'x', 'x:1', $1)", [value])).toBe(
      'deployments_manifest_path_confined',
    );
  });
  it.each(bad)('refuses %s in ops_repos.path at both doors', async (_label, value) => {
    expect(await sqlOutcome("insert into ops_repos (name, repo_url, path) values ('r', 'https://git.example/r.git', $1)", [value])).toBe('ops_repos_path_confined');
  });
  it.each(['shop', 'apps/shop', 'apps/shop/deploy.yaml', 'a..b/c', '.hidden-ok-not/x'.replace('.hidden-ok-not', 'dir')])('accepts %s at both doors', async (value) => {
    expect(repoPathProblem(value)).toBeNull();
    expect(await sqlOutcome("insert into deployments (project, environment, image_ref, manifest_path) values ('shop', 'x', 'x:1', $1)", [value])).toBe('accepted');
  });
});

describe('values_override', () => {
  it.each([
    ['nested 33 deep', nested(32)],
    ['nested 500 deep', nested(500)],
    ['300 KiB', { big: 'x'.repeat(300 * 1024) }],
  ])('refuses values %s at both doors', async (_label, value) => {
    expect(valuesProblem(value)).not.toBeNull();
    expect(await sqlOutcome("insert into deployments (project, environment, image_ref, values_override) values ('shop', 'x', 'x:1', $1)", [JSON.stringify(value)])).toMatch(
      /^deployments_values_override_(depth|size)$/,
    );
  });

  it('refuses a NUL inside a value at both doors (jsonb cannot hold it)', async () => {
    const value = { a: 'x\u0000y' };
    expect(valuesProblem(value)).toMatch(/NUL/);
    expect(await sqlOutcome("insert into deployments (project, environment, image_ref, values_override) values ('shop', 'x', 'x:1', $1)", [JSON.stringify(value)])).toMatch(/^22P05/);
  });

  it('accepts values nested 32 deep and just under 256 KiB at both doors', async () => {
    for (const value of [nested(31), { big: 'x'.repeat(250 * 1024) }]) {
      expect(valuesProblem(value)).toBeNull();
      expect(await sqlOutcome("insert into deployments (project, environment, image_ref, values_override) values ('shop', 'x', 'x:1', $1)", [JSON.stringify(value)])).toBe('accepted');
    }
  });

  it('measures depth the same way at both doors', async () => {
    for (let depth = 0; depth <= 40; depth++) {
      const value = nested(depth);
      const { rows } = await client.query('select keelson_jsonb_too_deep($1::jsonb) as deep', [JSON.stringify(value)]);
      expect([depth, rows[0].deep]).toEqual([depth, valuesProblem(value) !== null]);
    }
    for (const value of [{}, [], { a: [{ b: {} }] }, 'scalar', 1, null]) {
      const { rows } = await client.query('select keelson_jsonb_too_deep($1::jsonb) as deep', [JSON.stringify(value)]);
      expect(rows[0].deep).toBe(false);
    }
  });
});

describe('ops repo URL and branch', () => {
  it.each([
    ['ext:: remote helper', 'ext::sh -c touch% /tmp/pwned'],
    ['ext:: without spaces', 'ext::sh'],
    ['fd::', 'fd::17'],
    ['an option', '--upload-pack=touch /tmp/x'],
    ['an option, no space', '-uhelp'],
    ['an unknown scheme', 'gopher://git.example/x'],
    ['a host starting with -', 'ssh://-oProxyCommand=x/repo'],
    ['a user starting with -', 'ssh://-x@host/repo'],
    ['a space', 'https://git.example/a b.git'],
    ['a zero-width space', `https://git.example/a${ZW}.git`],
    ['a no-break space', `https://git.example/a${NBSP}.git`],
    ['a local path', '/srv/repos/x.git'],
    ['scp-like with option host', '-host:repo'],
  ])('refuses %s at both doors', async (_label, value) => {
    expect(urlProblem(value)).not.toBeNull();
    expect(await sqlOutcome("insert into ops_repos (name, repo_url) values ('r', $1)", [value])).toBe('ops_repos_repo_url_safe');
  });

  it.each(['https://git.example/ops.git', 'https://user:tok%40en@git.example/ops.git', 'ssh://git@git.example:2222/ops.git', 'git@github.com:acme/ops.git', 'git://git.example/ops', 'file:///srv/ops.git', 'https://[::1]:8443/ops.git'])(
    'accepts %s at both doors',
    async (value) => {
      expect(urlProblem(value)).toBeNull();
      expect(await sqlOutcome("insert into ops_repos (name, repo_url) values ('r', $1)", [value])).toBe('accepted');
    },
  );

  it.each([
    ['an option', '--upload-pack=touch /tmp/x'],
    ['..', 'a..b'],
    ['a leading dot', '.hidden'],
    ['a component with a leading dot', 'feature/.x'],
    ['.lock', 'main.lock'],
    ['a component ending in .lock', 'a.lock/b'],
    ['@{', 'main@{1}'],
    ['a lone @', '@'],
    ['HEAD', 'HEAD'],
    ['~', 'main~1'],
    ['^', 'main^'],
    [':', 'a:b'],
    ['?', 'a?'],
    ['*', 'a*'],
    ['[', 'a[b'],
    ['a backslash', 'a\\b'],
    ['a space', 'a b'],
    ['a control', 'a\u0001b'],
    ['a trailing dot', 'main.'],
    ['a leading slash', '/main'],
    ['a trailing slash', 'main/'],
    ['a double slash', 'a//b'],
    ['a zero-width space', `main${ZW}`],
    ['a no-break space', `ma${NBSP}in`],
    ['a bidi override', `${RLO}niam`],
    ['256 characters', 'b'.repeat(256)],
  ])('refuses a branch with %s at both doors', async (_label, value) => {
    expect(branchProblem(value)).not.toBeNull();
    expect(await sqlOutcome("insert into ops_repos (name, repo_url, branch) values ('r', 'https://git.example/r.git', $1)", [value])).toMatch(
      /^ops_repos_branch_(ref_format|not_blank)$/,
    );
  });

  it.each(['main', 'release/1.4', 'feature/ü-umlaut', 'a.b', 'v1.0-rc.1', 'b'.repeat(255)])('accepts the branch %s at both doors', async (value) => {
    expect(branchProblem(value)).toBeNull();
    expect(await sqlOutcome("insert into ops_repos (name, repo_url, branch) values ('r', 'https://git.example/r.git', $1)", [value])).toBe('accepted');
  });
});

describe('project policy patterns', () => {
  const cases: Array<[PatternColumn, string, boolean]> = [
    ['namespaces', 'shop-*', true],
    ['namespaces', '!shop-secret', true],
    ['namespaces', 'Shop', false],
    ['namespaces', 'shop/x', false],
    ['namespaces', '', false],
    ['source_repos', 'platform-*', true],
    ['source_repos', 'https://x', false],
    ['manifest_paths', 'shop/**', true],
    ['manifest_paths', '!shop/secret', true],
    ['manifest_paths', '../x', false],
    ['manifest_paths', '/abs', false],
    ['namespace_resource_whitelist', 'apps/Deployment', true],
    ['namespace_resource_blacklist', 'rbac.authorization.k8s.io/*', true],
    ['cluster_resource_whitelist', 'core/Namespace', true],
    ['cluster_resource_whitelist', '*/*', true],
    ['cluster_resource_whitelist', 'Namespace', false],
    ['cluster_resource_whitelist', '/Namespace', false],
    ['cluster_resource_whitelist', 'a/b/c', false],
  ];
  it.each(cases)('%s entry %j: valid = %s at both doors', async (column, pattern, valid) => {
    expect(patternProblem(column, pattern) === null).toBe(valid);
    const outcome = await sqlOutcome(`insert into projects (name, ${column}) values ('p', $1)`, [[pattern]]);
    expect(outcome).toBe(valid ? 'accepted' : `projects_${column}_patterns`);
  });

  it('refuses more than 100 patterns and a NULL entry', async () => {
    expect(await sqlOutcome('insert into projects (name, namespaces) values ($1, $2)', ['p', Array.from({ length: 101 }, (_, i) => `n${i}`)])).toBe('projects_namespaces_patterns');
    expect(await sqlOutcome("insert into projects (name, namespaces) values ('p', array['a', null])", [])).toBe('projects_namespaces_patterns');
  });
});
