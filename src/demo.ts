// The zero-setup demo `npm start` gives a newcomer: a real git ops repo under the data dir, one
// deployment that uses it, and a fresh admin token. Idempotent across restarts: the repo and
// rows are reused; only the token is replaced (it is shown once and not stored in clear).
import { execFile } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'slonik';
import { z } from 'zod';
import { createToken, revokeToken } from './api/tokens.ts';
import type { Db } from './db/pool.ts';
import type { Logger } from './logger.ts';

const run = promisify(execFile);

export const DEMO = { repo: 'demo-ops', project: 'demo', environment: 'local', image: 'registry.example/demo/web:1.0.0', token: 'demo-admin' } as const;

/**
 * The demo ops repo. Values are printed as plain `{{ … }}`: keelson escapes every printed value
 * as one YAML scalar (docs/ops-repos.md), so no quoting is needed and none can be broken out of.
 */
export const DEMO_FILES: Readonly<Record<string, string>> = {
  'values.yaml': 'replicas: 2\nport: 8080\n',
  'demo/values-local.yaml': 'greeting: hello from the local environment\n',
  'demo/configmap.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ project }}-config
data:
  GREETING: {{ values.greeting }}
  ENVIRONMENT: {{ environment }}
`,
  'demo/deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ project }}
spec:
  replicas: {{ values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ project }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ project }}
    spec:
      containers:
        - name: web
          image: {{ image_ref }}
          ports:
            - containerPort: {{ values.port }}
          envFrom:
            - configMapRef:
                name: {{ project }}-config
`,
  'demo/service.yaml': `apiVersion: v1
kind: Service
metadata:
  name: {{ project }}
spec:
  selector:
    app.kubernetes.io/name: {{ project }}
  ports:
    - port: 80
      targetPort: {{ values.port }}
`,
};

async function exists(file: string): Promise<boolean> {
  return await stat(file).then(() => true, () => false);
}

async function createDemoRepo(dir: string): Promise<void> {
  if (await exists(path.join(dir, '.git'))) return;
  await mkdir(path.join(dir, 'demo'), { recursive: true });
  for (const [file, content] of Object.entries(DEMO_FILES)) await writeFile(path.join(dir, file), content);
  const git = (...args: string[]) => run('git', ['-C', dir, '-c', 'user.name=keelson demo', '-c', 'user.email=demo@keelson.invalid', ...args]);
  await git('init', '-q', '-b', 'main');
  await git('add', '.');
  await git('commit', '-q', '-m', 'demo ops repo');
}

/** Returns a fresh admin token. */
export async function setUpDemo(deps: { db: Db; dataDir: string; log: Logger }): Promise<string> {
  const { db, dataDir, log } = deps;
  const repoDir = path.join(dataDir, 'demo', 'ops-repo');
  await createDemoRepo(repoDir);
  const repoId = await db.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into ops_repos (name, repo_url, branch, sync_interval_s)
    values (${DEMO.repo}, ${`file://${repoDir}`}, 'main', 10)
    on conflict (name) do update set repo_url = excluded.repo_url
    returning id`);
  await db.query(sql.unsafe`
    insert into deployments (project, environment, image_ref, ops_repo_id, manifest_path)
    values (${DEMO.project}, ${DEMO.environment}, ${DEMO.image}, ${repoId}, 'demo')
    on conflict (project, environment) do nothing`);
  await revokeToken(db, DEMO.token, { actor: 'keelson' });
  const { token } = await createToken(db, { name: DEMO.token, permissions: ['admin'] }, { actor: 'keelson' });
  log.info({ repo: repoDir, deployment: `${DEMO.project}/${DEMO.environment}` }, 'demo ops repo and deployment ready');
  return token;
}
