// /api/admin/ops-repos: the git repositories holding manifest templates. Credentials inside
// repo_url are stored (git needs them) and redacted from every response and audit payload.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { OpsRepoRow } from '../db/rows.ts';
import { errorMessage } from '../errors.ts';
import { ApiError, notFound } from './httpErrors.ts';
import { redactSecrets, redactUrlCredentials } from './redact.ts';
import { jsonRoute, type AnyRoute } from './route.ts';
import { CreateOpsRepoBody, OpsRepo, OpsRepoList, OpsRepoParams, PatchOpsRepoBody, SyncResult } from './schemas.ts';

export interface OpsRepoRouteDeps {
  readonly opsRepos?: { sync(repoId: string, options?: { force?: boolean }): Promise<{ sha: string; fetched: boolean }> } | undefined;
}

const TAGS = ['ops-repos'];
const COLUMNS = sql.fragment`id, name, repo_url, branch, path, sync_interval_s, last_synced_at, last_sha, last_error, created_at, updated_at`;

const publicRepo = (row: OpsRepoRow): OpsRepoRow => ({
  ...row,
  repo_url: redactUrlCredentials(row.repo_url),
  last_error: row.last_error === null ? null : redactSecrets(row.last_error),
});

async function loadRepo(db: CommonQueryMethods, id: string): Promise<OpsRepoRow> {
  const row = await db.maybeOne(sql.type(OpsRepoRow)`select ${COLUMNS} from ops_repos where id = ${id}`);
  if (!row) throw notFound(`No ops repo with id ${id}; list them with GET /api/admin/ops-repos.`);
  return row;
}

const nameTaken = (name: string) =>
  new ApiError(409, 'ops_repo_exists', `An ops repo named "${name}" already exists.`, {
    details: [{ field: 'name', message: 'expected a name not used by another ops repo' }],
  });

export function opsRepoRoutes(deps: OpsRepoRouteDeps): AnyRoute[] {
  return [
    jsonRoute({
      method: 'get',
      path: '/api/admin/ops-repos',
      operationId: 'listOpsRepos',
      summary: 'List ops repos.',
      tags: TAGS,
      access: 'admin-global',
      responses: { 200: { description: 'Ops repos by name.', schema: OpsRepoList } },
      handler: async ({ db }) => {
        const rows = await db.any(sql.type(OpsRepoRow)`select ${COLUMNS} from ops_repos order by name`);
        return { status: 200, body: { items: rows.map(publicRepo) } };
      },
    }),
    jsonRoute({
      method: 'post',
      path: '/api/admin/ops-repos',
      operationId: 'createOpsRepo',
      summary: 'Register an ops repo.',
      tags: TAGS,
      access: 'admin-global',
      body: CreateOpsRepoBody,
      responses: {
        201: { description: 'Created.', schema: OpsRepo, headers: { Location: 'URL of the new ops repo.' } },
        409: { description: 'The name is taken.' },
      },
      replayHeaders: (body): Record<string, string> => {
        const id = (body as { id?: string }).id;
        return id ? { Location: `/api/admin/ops-repos/${id}` } : {};
      },
      handler: async ({ db, body, audit }) => {
        const row = await db.maybeOne(sql.type(OpsRepoRow)`
          insert into ops_repos (name, repo_url, branch, path, sync_interval_s)
          values (${body.name}, ${body.repo_url}, ${body.branch ?? 'main'}, ${body.path ?? ''}, ${body.sync_interval_s ?? 60})
          on conflict (name) do nothing
          returning ${COLUMNS}`);
        if (!row) throw nameTaken(body.name);
        await audit('ops_repo.create', `ops-repo/${row.name}`, { ...body, repo_url: redactUrlCredentials(body.repo_url) });
        return { status: 201, body: publicRepo(row), headers: { Location: `/api/admin/ops-repos/${row.id}` } };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/admin/ops-repos/:id',
      operationId: 'getOpsRepo',
      summary: 'One ops repo.',
      tags: TAGS,
      access: 'admin-global',
      params: OpsRepoParams,
      responses: { 200: { description: 'The ops repo.', schema: OpsRepo }, 404: { description: 'No such ops repo.' } },
      handler: async ({ db, params }) => ({ status: 200, body: publicRepo(await loadRepo(db, params.id)) }),
    }),
    jsonRoute({
      method: 'patch',
      path: '/api/admin/ops-repos/:id',
      operationId: 'updateOpsRepo',
      summary: 'Change an ops repo (name, URL, branch, path, sync interval).',
      tags: TAGS,
      access: 'admin-global',
      params: OpsRepoParams,
      body: PatchOpsRepoBody,
      responses: {
        200: { description: 'The updated ops repo.', schema: OpsRepo },
        404: { description: 'No such ops repo.' },
        409: { description: 'The new name is taken.' },
      },
      handler: async ({ db, params, body, audit }) => {
        await loadRepo(db, params.id);
        if (body.name !== undefined) {
          const other = await db.maybeOne(sql.type(z.object({ id: z.string() }))`
            select id from ops_repos where name = ${body.name} and id <> ${params.id}`);
          if (other) throw nameTaken(body.name);
        }
        const sets = [
          body.name !== undefined ? sql.fragment`name = ${body.name}` : null,
          body.repo_url !== undefined ? sql.fragment`repo_url = ${body.repo_url}` : null,
          body.branch !== undefined ? sql.fragment`branch = ${body.branch}` : null,
          body.path !== undefined ? sql.fragment`path = ${body.path}` : null,
          body.sync_interval_s !== undefined ? sql.fragment`sync_interval_s = ${body.sync_interval_s}` : null,
        ].filter((s) => s !== null);
        const row = await db.one(sql.type(OpsRepoRow)`
          update ops_repos set ${sql.join(sets, sql.fragment`, `)}, updated_at = now()
          where id = ${params.id} returning ${COLUMNS}`);
        await audit('ops_repo.update', `ops-repo/${row.name}`, {
          ...body,
          ...(body.repo_url !== undefined ? { repo_url: redactUrlCredentials(body.repo_url) } : {}),
        });
        return { status: 200, body: publicRepo(row) };
      },
    }),
    jsonRoute({
      method: 'delete',
      path: '/api/admin/ops-repos/:id',
      operationId: 'deleteOpsRepo',
      summary: 'Remove an ops repo no deployment uses.',
      tags: TAGS,
      access: 'admin-global',
      params: OpsRepoParams,
      responses: {
        204: { description: 'Deleted.' },
        404: { description: 'No such ops repo.' },
        409: { description: 'Deployments still use it.' },
      },
      handler: async ({ db, params, audit }) => {
        const repo = await loadRepo(db, params.id);
        const users = await db.any(sql.type(z.object({ name: z.string() }))`
          select project || '/' || environment as name from deployments where ops_repo_id = ${params.id} order by 1 limit 5`);
        if (users.length > 0) {
          throw new ApiError(409, 'ops_repo_in_use', `Ops repo "${repo.name}" is used by ${users.map((u) => u.name).join(', ')}; point those deployments elsewhere first.`);
        }
        await db.query(sql.unsafe`delete from ops_repos where id = ${params.id}`);
        await audit('ops_repo.delete', `ops-repo/${repo.name}`, { id: repo.id });
        return { status: 204, body: null };
      },
    }),
    jsonRoute({
      method: 'post',
      path: '/api/admin/ops-repos/:id/sync',
      operationId: 'syncOpsRepo',
      summary: 'Fetch the ops repo now (for a git host push webhook).',
      tags: TAGS,
      access: 'admin-global',
      params: OpsRepoParams,
      responses: {
        200: { description: 'Synced: the commit now checked out and whether anything was fetched.', schema: SyncResult },
        404: { description: 'No such ops repo.' },
        502: { description: 'The fetch failed (message has credentials redacted).' },
        503: { description: 'This process runs no ops repo syncer.' },
      },
      handler: async ({ db, params, audit }) => {
        const repo = await loadRepo(db, params.id);
        if (!deps.opsRepos) {
          throw new ApiError(503, 'sync_unavailable', 'This process runs no ops repo syncer; call the sync endpoint of a `keelson serve` process that runs the runtime.');
        }
        let result: { sha: string; fetched: boolean };
        try {
          result = await deps.opsRepos.sync(repo.id, { force: true });
        } catch (error) {
          throw new ApiError(502, 'sync_failed', `Syncing ops repo "${repo.name}" failed: ${redactSecrets(errorMessage(error))}`, { cause: error });
        }
        await audit('ops_repo.sync', `ops-repo/${repo.name}`, { sha: result.sha, fetched: result.fetched });
        return { status: 200, body: { sha: result.sha, fetched: result.fetched } };
      },
    }),
  ];
}
