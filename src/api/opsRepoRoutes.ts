// /api/admin/ops-repos: the git repositories holding manifest templates. Credentials inside
// repo_url are stored (git needs them) and redacted from every response and audit payload; the
// webhook secret is write-only. And /api/hooks/ops-repos/:id, the push webhook git hosts call.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { OpsRepoRow } from '../db/rows.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { assertSafeRepoUrl } from '../opsrepo/repoUrl.ts';
import { verifyWebhook, webhookIntent } from '../opsrepo/webhookAuth.ts';
import { ApiError, notFound } from './httpErrors.ts';
import { redactSecrets, redactUrlCredentials } from './redact.ts';
import { jsonRoute, rawRoute, type AnyRoute } from './route.ts';
import { CreateOpsRepoBody, OpsRepo, OpsRepoList, OpsRepoParams, PatchOpsRepoBody, SyncResult, WebhookAccepted } from './schemas.ts';

export interface OpsRepoRouteDeps {
  readonly opsRepos?: { fetch(repoId: string, options?: { force?: boolean }): Promise<{ sha: string; fetched: boolean }> } | undefined;
  /** KEELSON_ALLOW_FILE_REPOS */
  readonly allowFileRepos: boolean;
  readonly log: Logger;
}

const TAGS = ['ops-repos'];
const COLUMNS = sql.fragment`
  id, name, repo_url, branch, path, sync_interval_s, last_synced_at, last_sha, last_error, created_at, updated_at,
  webhook_secret is not null as webhook_secret_set`;
const StoredRepo = OpsRepoRow.extend({ webhook_secret_set: z.boolean() });
type StoredRepo = z.infer<typeof StoredRepo>;

const publicRepo = (row: StoredRepo): StoredRepo => ({
  ...row,
  repo_url: redactUrlCredentials(row.repo_url),
  last_error: row.last_error === null ? null : redactSecrets(row.last_error),
});

async function loadRepo(db: CommonQueryMethods, id: string): Promise<StoredRepo> {
  const row = await db.maybeOne(sql.type(StoredRepo)`select ${COLUMNS} from ops_repos where id = ${id}`);
  if (!row) throw notFound(`No ops repo with id ${id}; list them with GET /api/admin/ops-repos.`);
  return row;
}

/** What an audit row may say of an ops repo body: no credentials, no webhook secret. */
function auditable(body: { repo_url?: string; webhook_secret?: string | null }): Record<string, unknown> {
  const { webhook_secret: secret, ...rest } = body;
  return {
    ...rest,
    ...(rest.repo_url !== undefined ? { repo_url: redactUrlCredentials(rest.repo_url) } : {}),
    ...(secret !== undefined ? { webhook_secret: secret === null ? 'removed' : 'set' } : {}),
  };
}

const nameTaken = (name: string) =>
  new ApiError(409, 'ops_repo_exists', `An ops repo named "${name}" already exists.`, {
    details: [{ field: 'name', message: 'expected a name not used by another ops repo' }],
  });

export function opsRepoRoutes(deps: OpsRepoRouteDeps): AnyRoute[] {
  // the shape of a URL is checked by the schema; whether file:// may be used is this process's setting
  const assertTransportAllowed = (url: string | undefined) => {
    if (url === undefined) return;
    try {
      assertSafeRepoUrl(url, { allowFileRepos: deps.allowFileRepos });
    } catch (error) {
      throw new ApiError(400, 'invalid_request', `Invalid request body: repo_url: ${redactSecrets(errorMessage(error))}`, {
        details: [{ field: 'repo_url', message: 'file:// URLs are off on this server (KEELSON_ALLOW_FILE_REPOS); use a remote URL' }],
      });
    }
  };
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
        const rows = await db.any(sql.type(StoredRepo)`select ${COLUMNS} from ops_repos order by name`);
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
        assertTransportAllowed(body.repo_url);
        const row = await db.maybeOne(sql.type(StoredRepo)`
          insert into ops_repos (name, repo_url, branch, path, sync_interval_s, webhook_secret)
          values (${body.name}, ${body.repo_url}, ${body.branch ?? 'main'}, ${body.path ?? ''}, ${body.sync_interval_s ?? 60}, ${body.webhook_secret ?? null})
          on conflict (name) do nothing
          returning ${COLUMNS}`);
        if (!row) throw nameTaken(body.name);
        await audit('ops_repo.create', `ops-repo/${row.name}`, auditable(body));
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
        assertTransportAllowed(body.repo_url);
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
          body.webhook_secret !== undefined ? sql.fragment`webhook_secret = ${body.webhook_secret}` : null,
        ].filter((s) => s !== null);
        const row = await db.one(sql.type(StoredRepo)`
          update ops_repos set ${sql.join(sets, sql.fragment`, `)}, updated_at = now()
          where id = ${params.id} returning ${COLUMNS}`);
        await audit('ops_repo.update', `ops-repo/${row.name}`, auditable(body));
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
          result = await deps.opsRepos.fetch(repo.id, { force: true });
        } catch (error) {
          throw new ApiError(502, 'sync_failed', `Syncing ops repo "${repo.name}" failed: ${redactSecrets(errorMessage(error))}`, { cause: error });
        }
        await audit('ops_repo.sync', `ops-repo/${repo.name}`, { sha: result.sha, fetched: result.fetched });
        return { status: 200, body: { sha: result.sha, fetched: result.fetched } };
      },
    }),
    rawRoute({
      method: 'post',
      path: '/api/hooks/ops-repos/:id',
      operationId: 'opsRepoPushWebhook',
      summary: 'Push webhook of a git host: fetches the ops repo now. Authenticated by the repository\'s webhook secret, not by a token.',
      description:
        'GitHub: content type application/json, secret = the ops repo\'s webhook_secret (verified from X-Hub-Signature-256). GitLab: secret token = webhook_secret (X-Gitlab-Token). ' +
        'A push to another branch, or another event, is accepted and ignored. The fetch runs after the answer; its outcome is in the ops repo\'s last_synced_at / last_error.',
      tags: TAGS,
      access: 'public',
      params: OpsRepoParams,
      responses: {
        200: { description: 'A GitHub ping.', schema: WebhookAccepted },
        202: { description: 'Accepted: `syncing` says whether a fetch was started.', schema: WebhookAccepted },
        401: { description: 'The signature or token is missing or does not match (`webhook_unauthenticated`).' },
        403: { description: 'The ops repo has no webhook secret (`webhook_not_configured`).' },
        404: { description: 'No such ops repo.' },
        503: { description: 'This process runs no ops repo syncer.' },
      },
      handler: async ({ db, params, req, audit }, res) => {
        const repo = await db.maybeOne(sql.type(z.object({ id: z.string(), name: z.string(), branch: z.string(), webhook_secret: z.string().nullable() }))`
          select id, name, branch, webhook_secret from ops_repos where id = ${params.id}`);
        if (!repo) throw notFound(`No ops repo with id ${params.id}.`);
        if (repo.webhook_secret === null) {
          throw new ApiError(403, 'webhook_not_configured', `Ops repo "${repo.name}" has no webhook secret; an admin sets one with PATCH /api/admin/ops-repos/${repo.id} {"webhook_secret": …}.`);
        }
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const verdict = verifyWebhook({ get: (name) => req.get(name) }, raw, repo.webhook_secret);
        if (!verdict.ok) {
          throw new ApiError(401, 'webhook_unauthenticated', `The webhook is refused: ${verdict.reason}. Configure the git host with the ops repo's webhook secret.`);
        }
        const intent = webhookIntent(verdict.source, { get: (name) => req.get(name) }, raw, repo.branch);
        if (intent.action === 'ping') {
          res.status(200).json({ syncing: false, reason: intent.reason });
          return;
        }
        if (intent.action === 'ignore') {
          res.status(202).json({ syncing: false, reason: intent.reason });
          return;
        }
        const syncer = deps.opsRepos;
        if (!syncer) {
          throw new ApiError(503, 'sync_unavailable', 'This process runs no ops repo syncer; point the webhook at a `keelson serve` process that runs the runtime.');
        }
        await audit('ops_repo.webhook', `ops-repo/${repo.name}`, { source: verdict.source, reason: intent.reason }, `webhook:${verdict.source}`);
        // git hosts give up after ~10 s; a fetch may take longer: answer first, record the outcome on the row
        syncer.fetch(repo.id, { force: true }).catch((error: unknown) => {
          deps.log.warn({ opsRepo: repo.name, err: { message: redactSecrets(errorMessage(error)) } }, 'webhook-triggered sync failed');
        });
        res.status(202).json({ syncing: true, reason: intent.reason });
      },
    }),
  ];
}
