// /api/projects/:project/deployments/... and /api/deployments: desired state, history,
// transitions and the live event stream of each deployment.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { loadAction, readAction } from '../actions/load.ts';
import { expectedAction, type ActionView } from '../actions/status.ts';
import { chooseRollbackTarget } from '../db/queries/findRollbackTarget.ts';
import { DeploymentRow, HistoryRow, TransitionRow, defaultNamespace } from '../db/rows.ts';
import { errorMessage } from '../errors.ts';
import { checkPlacement, type PlacementViolation } from '../tenancy/policy.ts';
import { getProjectPolicy } from '../tenancy/sql/getProjectPolicy.ts';
import type { EventStreams } from './eventStreams.ts';
import { canaryView, type CanaryView } from './canaryView.ts';
import { ApiError, notFound } from './httpErrors.ts';
import { redactHistoryError, redactLastError, redactSecrets } from './redact.ts';
import { jsonRoute, rawRoute, type AnyRoute } from './route.ts';
import {
  Action,
  ActionParams,
  CanaryCommandAccepted,
  CanaryParams,
  CreateDeploymentBody,
  DeploymentAccepted,
  DeploymentDetail,
  DeploymentList,
  DeploymentParams,
  DeploymentSummary,
  EventsQuery,
  History,
  ListDeploymentsQuery,
  PageQuery,
  PatchDeploymentBody,
  ProjectParams,
  RollbackAccepted,
  TeardownAccepted,
  Transition,
  cursor,
  page,
} from './schemas.ts';
import { canSeeProject, type Principal } from './tokens.ts';
import type { TransitionHub } from './transitionHub.ts';

export type LiveResource = { apiVersion: string; kind: string; name: string; namespace?: string; status: string; message: string };

export interface DeploymentRouteDeps {
  readonly hub: TransitionHub;
  readonly streams: EventStreams;
  readonly liveTimeoutMs: number;
  readonly kube?: { liveStatus(deploymentId: string, namespace: string): Promise<LiveResource[]> } | undefined;
}

const TAGS = ['deployments'];
const DEPLOYMENT_COLUMNS = sql.fragment`
  id, project, environment, image_ref, desired_status, values_override, ops_repo_id, manifest_path,
  namespace, auto_rollback, rollback_to, drift, drift_detected, generation, current_status, current_image_ref, current_sha, deployed_at,
  last_error, observed_generation, status_changed_at, created_at, updated_at`;
const SUMMARY_COLUMNS = sql.fragment`
  id, project, environment, image_ref, desired_status, current_status, current_image_ref, deployed_at,
  generation, observed_generation, last_error, status_changed_at`;

export const deploymentPath = (project: string, environment: string) =>
  `/api/projects/${project}/deployments/${environment}`;
export const actionPath = (project: string, environment: string, generation: number) =>
  `${deploymentPath(project, environment)}/actions/${generation}`;
export const etagOf = (row: { id: string; generation: number }) => `"${row.id}:${row.generation}"`;

function assertProjectVisible(principal: Principal | null, project: string): void {
  if (principal && !canSeeProject(principal, project)) {
    // the same answer as for a project that does not exist: a scoped token learns nothing
    throw notFound(`No project "${project}" is visible to this token.`);
  }
}

export async function loadDeployment(db: CommonQueryMethods, principal: Principal | null, project: string, env: string): Promise<DeploymentRow> {
  assertProjectVisible(principal, project);
  const row = await db.maybeOne(sql.type(DeploymentRow)`
    select ${DEPLOYMENT_COLUMNS} from deployments where project = ${project} and environment = ${env}`);
  if (!row) throw notFound(`No deployment ${project}/${env}; create it with POST /api/projects/${project}/deployments.`);
  return row;
}

/**
 * The project's policy decides where its deployments may go; checked on every API write that
 * names or keeps a namespace, ops repo or manifest path (the actor checks again after rendering,
 * for rows written by SQL). 403 `policy_violation` names the rule and the body field.
 */
async function assertPlacementAllowed(
  db: CommonQueryMethods,
  project: string,
  target: { namespace: string; opsRepoId: string | null; opsRepoName?: string; manifestPath: string | null },
  /** The body field that named the ops repo, for the error's details. */
  repoField: 'ops_repo' | 'ops_repo_id' = 'ops_repo',
): Promise<void> {
  const policy = await getProjectPolicy(db, project);
  let opsRepo = target.opsRepoName ?? null;
  if (opsRepo === null && target.opsRepoId !== null) {
    opsRepo = (await db.maybeOne(sql.type(z.object({ name: z.string() }))`select name from ops_repos where id = ${target.opsRepoId}`))?.name ?? null;
  }
  const violations = checkPlacement(policy, { namespace: target.namespace, opsRepo, manifestPath: target.manifestPath });
  if (violations.length > 0) throw policyRefusal(project, violations, repoField);
}

const placementOf = (row: DeploymentRow) => ({
  namespace: row.namespace ?? defaultNamespace(row.project, row.environment),
  opsRepoId: row.ops_repo_id,
  manifestPath: row.manifest_path,
});

function policyRefusal(project: string, violations: readonly PlacementViolation[], repoField: 'ops_repo' | 'ops_repo_id'): ApiError {
  return new ApiError(
    403,
    'policy_violation',
    `${violations.map((v) => v.message).join(' ')} Ask an admin to change project ${project}'s policy (GET /api/projects/${project}/policy shows it).`,
    { details: violations.map((v) => ({ field: v.field === 'ops_repo' ? repoField : v.field, message: `refused by the project policy (${v.rule})` })) },
  );
}

/** If-Match: `*`, or a list of strong/weak tags; the tag is `"<id>:<generation>"`. */
function ifMatchSatisfied(header: string, row: DeploymentRow): boolean {
  if (header.trim() === '*') return true;
  const current = `${row.id}:${row.generation}`;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '') === current);
}

const SCALAR_LIMIT = 200;

/** Scalar fields of the snapshot context: enough to see what the actor holds, nothing bulky. */
function summarizeContext(snapshot: unknown): Record<string, unknown> | null {
  const context = (snapshot as { context?: unknown } | null)?.context;
  if (!context || typeof context !== 'object' || Array.isArray(context)) return null;
  const summary: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context).slice(0, 40)) {
    if (typeof value === 'string') {
      const redacted = redactSecrets(value);
      summary[key] = redacted.length > SCALAR_LIMIT ? `${redacted.slice(0, SCALAR_LIMIT)}…` : redacted;
    } else if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
      summary[key] = value;
    }
  }
  return summary;
}

/** An abort's reason is an error message: credentials in it are redacted like last_error's. */
function redactCanary(view: CanaryView | null): CanaryView | null {
  return view && { ...view, abort_reason: view.abort_reason === null ? null : redactSecrets(view.abort_reason) };
}

const SnapshotRow = z.object({ state: z.string(), seq: z.number(), updated_at: z.string(), machine_version: z.string(), snapshot: z.unknown() });

async function liveStatus(deps: DeploymentRouteDeps, row: DeploymentRow) {
  const namespace = row.namespace ?? defaultNamespace(row.project, row.environment);
  if (!deps.kube) return { available: false, namespace, error: 'This process has no Kubernetes client configured.' };
  let timer: NodeJS.Timeout | undefined;
  try {
    const resources = await Promise.race([
      deps.kube.liveStatus(row.id, namespace),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the cluster did not answer within ${deps.liveTimeoutMs} ms`)), deps.liveTimeoutMs);
      }),
    ]);
    return { available: true, namespace, resources };
  } catch (error) {
    return { available: false, namespace, error: redactSecrets(errorMessage(error)) };
  } finally {
    clearTimeout(timer);
  }
}

function pageFragment(before: number | undefined) {
  return before === undefined ? sql.fragment`true` : sql.fragment`id < ${before}`;
}

function paginate<T extends { id: number }>(rows: readonly T[], limit: number) {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
}

const RollbackBody = z.strictObject({
  release: z.number().int().positive().optional().meta({ description: 'The deployment_history id of the release to roll back to; it must belong to this deployment and have succeeded.' }),
});

function valuesSummary(values: Record<string, unknown> | undefined) {
  // template values may hold secrets: the audit log records which keys changed, not values
  return values === undefined ? undefined : { keys: Object.keys(values).sort() };
}

function actionLinks(project: string, environment: string, generation: number, self: 'action' | 'deployment') {
  const deployment = deploymentPath(project, environment);
  const action = actionPath(project, environment, generation);
  return { self: self === 'action' ? action : deployment, action, deployment, events: `${deployment}/events` };
}

const redactAction = (view: ActionView): ActionView => ({
  ...redactHistoryError(view),
  phases: view.phases.map(redactHistoryError),
  auto_rollback: view.auto_rollback && redactHistoryError(view.auto_rollback),
});

/**
 * What a mutation adds to its 202: the action its generation starts, to follow at
 * `links.action` (also the Location, beside the ETag). Read on the mutation's own connection: a PATCH that changed
 * nothing answers with the current generation's action as it stands.
 */
async function accepted(db: CommonQueryMethods, row: DeploymentRow) {
  const view = await readAction(db, row, row.generation);
  const links = actionLinks(row.project, row.environment, row.generation, 'deployment');
  return { fields: { action: view?.action ?? expectedAction(row), status: view?.status ?? 'pending', links }, headers: { Location: links.action, ETag: etagOf(row) } };
}

/** An idempotent replay answers with the Location of the stored answer's action. */
const locationOf = (body: unknown): Record<string, string> => {
  const action = (body as { links?: { action?: unknown } } | null)?.links?.action;
  return typeof action === 'string' ? { Location: action } : {};
};

export function deploymentRoutes(deps: DeploymentRouteDeps): AnyRoute[] {
  const etagHeader = { ETag: 'Entity tag "<id>:<generation>" for If-Match.' };
  return [
    jsonRoute({
      method: 'get',
      path: '/api/deployments',
      operationId: 'listAllDeployments',
      summary: 'List every deployment the token can see (all projects, or its own project).',
      tags: TAGS,
      access: 'deploy:read',
      query: ListDeploymentsQuery,
      responses: { 200: { description: 'Deployments ordered by project and environment.', schema: DeploymentList } },
      handler: async ({ db, principal, query }) => {
        const scope = principal?.project ?? null;
        const project = query.project ?? null;
        const items = await db.any(sql.type(DeploymentSummary)`
          select ${SUMMARY_COLUMNS} from deployments
          where (${scope}::text is null or project = ${scope}) and (${project}::text is null or project = ${project})
          order by project, environment`);
        return { status: 200, body: { items: items.map(redactLastError) } };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/projects/:project/deployments',
      operationId: 'listDeployments',
      summary: "List a project's deployments.",
      tags: TAGS,
      access: 'deploy:read',
      params: ProjectParams,
      responses: {
        200: { description: 'Deployments ordered by environment.', schema: DeploymentList },
        404: { description: 'The project is outside the token\'s scope.'},
      },
      handler: async ({ db, principal, params }) => {
        assertProjectVisible(principal, params.project);
        const items = await db.any(sql.type(DeploymentSummary)`
          select ${SUMMARY_COLUMNS} from deployments where project = ${params.project} order by environment`);
        return { status: 200, body: { items: items.map(redactLastError) } };
      },
    }),
    jsonRoute({
      method: 'post',
      path: '/api/projects/:project/deployments',
      operationId: 'createDeployment',
      summary: "Create an environment's deployment.",
      tags: TAGS,
      access: 'deploy:promote',
      params: ProjectParams,
      body: CreateDeploymentBody,
      responses: {
        202: {
          description: 'Created; the actor deploys it. The body is the deployment with the action its first generation starts.',
          schema: DeploymentAccepted,
          headers: { Location: 'URL of the action (GET it to follow the phases).', ...etagHeader },
        },
        403: { description: 'The token lacks deploy:promote, or the namespace, ops repo or manifest path is outside the project policy (`policy_violation`, naming the rule).' },
        404: { description: 'The project is outside the token\'s scope.' },
        409: { description: 'The environment already has a deployment.' },
      },
      replayHeaders: locationOf,
      handler: async ({ db, principal, params, body, audit }) => {
        assertProjectVisible(principal, params.project);
        const namespace = body.namespace ?? defaultNamespace(params.project, body.environment);
        const manifestPath = body.manifest_path ?? null;
        if (body.ops_repo !== undefined || body.ops_repo_id == null) {
          // by name, the policy is checked before the name is looked up: a refused token learns
          // nothing about which ops repos exist
          await assertPlacementAllowed(db, params.project, { namespace, opsRepoId: null, opsRepoName: body.ops_repo, manifestPath });
        }
        let opsRepoId = body.ops_repo_id ?? null;
        if (body.ops_repo !== undefined) {
          const repo = await db.maybeOne(sql.type(z.object({ id: z.string() }))`select id from ops_repos where name = ${body.ops_repo}`);
          if (!repo) {
            throw new ApiError(400, 'invalid_request', `No ops repo named "${body.ops_repo}".`, {
              details: [{ field: 'ops_repo', message: 'expected the name of an existing ops repo (GET /api/admin/ops-repos)' }],
            });
          }
          opsRepoId = repo.id;
        } else if (opsRepoId !== null) {
          const repo = await db.maybeOne(sql.type(z.object({ id: z.string() }))`select id from ops_repos where id = ${opsRepoId}`);
          if (!repo) {
            throw new ApiError(400, 'invalid_request', `No ops repo with id ${opsRepoId}.`, {
              details: [{ field: 'ops_repo_id', message: 'expected the id of an existing ops repo (GET /api/admin/ops-repos)' }],
            });
          }
          await assertPlacementAllowed(db, params.project, { namespace, opsRepoId, manifestPath }, 'ops_repo_id');
        }
        const row = await db.maybeOne(sql.type(DeploymentRow)`
          insert into deployments (project, environment, image_ref, desired_status, values_override, ops_repo_id,
                                   manifest_path, namespace, auto_rollback, drift)
          values (${params.project}, ${body.environment}, ${body.image_ref}, ${body.desired_status ?? 'active'},
                  ${sql.jsonb((body.values_override ?? {}) as never)}, ${opsRepoId}, ${body.manifest_path ?? null},
                  ${body.namespace ?? null}, ${body.auto_rollback ?? false}, ${body.drift ?? 'repair'})
          on conflict (project, environment) do nothing
          returning ${DEPLOYMENT_COLUMNS}`);
        if (!row) {
          throw new ApiError(409, 'deployment_exists', `${params.project}/${body.environment} already exists; change it with PATCH ${deploymentPath(params.project, body.environment)}.`);
        }
        await audit('deployment.create', `${row.project}/${row.environment}`, {
          image_ref: row.image_ref,
          desired_status: row.desired_status,
          ops_repo_id: row.ops_repo_id,
          manifest_path: row.manifest_path,
          namespace: row.namespace,
          auto_rollback: row.auto_rollback,
          drift: row.drift,
          values_override: valuesSummary(body.values_override),
        });
        const action = await accepted(db, row);
        return { status: 202, body: { ...redactLastError(row), ...action.fields }, headers: action.headers };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/projects/:project/deployments/:env',
      operationId: 'getDeployment',
      summary: 'A deployment with recent history, the actor snapshot and the live workload status.',
      tags: TAGS,
      access: 'deploy:read',
      params: DeploymentParams,
      responses: {
        200: { description: 'The deployment.', schema: DeploymentDetail, headers: etagHeader },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
      },
      handler: async ({ db, principal, params }) => {
        const row = await loadDeployment(db, principal, params.project, params.env);
        const [history, snapshot, live] = await Promise.all([
          db.any(sql.type(HistoryRow)`
            select id, deployment_id, action_id, action, status, image_ref, sha, generation, phases, error, triggered_by, created_at
            from deployment_history where deployment_id = ${row.id} order by id desc limit 10`),
          db.maybeOne(sql.type(SnapshotRow)`
            select state, seq, updated_at, machine_version, snapshot from deployment_snapshots where deployment_id = ${row.id}`),
          liveStatus(deps, row),
        ]);
        const snapshotSummary = snapshot
          ? {
              state: snapshot.state,
              seq: snapshot.seq,
              updated_at: snapshot.updated_at,
              machine_version: snapshot.machine_version,
              status: typeof (snapshot.snapshot as { status?: unknown } | null)?.status === 'string' ? (snapshot.snapshot as { status: string }).status : null,
              context: summarizeContext(snapshot.snapshot),
              canary: redactCanary(canaryView(snapshot.snapshot)),
            }
          : null;
        return { status: 200, body: { deployment: redactLastError(row), history: history.map(redactHistoryError), snapshot: snapshotSummary, live }, headers: { ETag: etagOf(row) } };
      },
    }),
    jsonRoute({
      method: 'patch',
      path: '/api/projects/:project/deployments/:env',
      operationId: 'updateDeployment',
      summary: 'Change the desired state (image, status, values, auto-rollback).',
      description: 'Send `If-Match` with the ETag of a previous GET to refuse the change (412) when someone changed the desired state since.',
      tags: TAGS,
      access: 'deploy:promote',
      params: DeploymentParams,
      body: PatchDeploymentBody,
      headers: [{ name: 'If-Match', description: 'ETag from GET; 412 when the deployment changed since.' }],
      replayHeaders: locationOf,
      responses: {
        202: {
          description: 'Accepted: the deployment with the action its (new) generation starts; a change that altered nothing answers with the current generation\'s action.',
          schema: DeploymentAccepted,
          headers: { Location: 'URL of the action (GET it to follow the phases).', ...etagHeader },
        },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
        412: { description: 'If-Match does not match the current ETag.' },
      },
      handler: async ({ db, principal, params, body, req, audit }) => {
        const before = await loadDeployment(db, principal, params.project, params.env);
        const ifMatch = req.get('if-match');
        const stale = () =>
          new ApiError(412, 'precondition_failed', `The deployment changed since your ETag (now ${etagOf(before)}); GET it again and retry with the new ETag.`, {
            headers: { ETag: etagOf(before) },
            details: [{ field: 'If-Match', message: `expected the current ETag ${etagOf(before)}` }],
          });
        if (ifMatch !== undefined && !ifMatchSatisfied(ifMatch, before)) throw stale();
        // a row written by SQL may point where the policy does not allow: the API does not act on it
        await assertPlacementAllowed(db, params.project, placementOf(before));
        const sets = [
          body.image_ref !== undefined ? sql.fragment`image_ref = ${body.image_ref}` : null,
          body.desired_status !== undefined ? sql.fragment`desired_status = ${body.desired_status}` : null,
          body.values_override !== undefined ? sql.fragment`values_override = ${sql.jsonb(body.values_override as never)}` : null,
          body.auto_rollback !== undefined ? sql.fragment`auto_rollback = ${body.auto_rollback}` : null,
          // a policy, not desired state: no new generation (migration 0011); a new policy clears
          // the old policy's finding, the next check writes it again if it still holds
          body.drift !== undefined ? sql.fragment`drift = ${body.drift}, drift_detected = null` : null,
        ].filter((s) => s !== null);
        // the generation check in the WHERE makes If-Match race-free
        const row = await db.maybeOne(sql.type(DeploymentRow)`
          update deployments set ${sql.join(sets, sql.fragment`, `)}
          where id = ${before.id} ${ifMatch !== undefined && ifMatch.trim() !== '*' ? sql.fragment`and generation = ${before.generation}` : sql.fragment``}
          returning ${DEPLOYMENT_COLUMNS}`);
        if (!row) throw stale();
        await audit('deployment.update', `${row.project}/${row.environment}`, {
          image_ref: body.image_ref,
          desired_status: body.desired_status,
          auto_rollback: body.auto_rollback,
          drift: body.drift,
          values_override: valuesSummary(body.values_override),
          generation: { from: before.generation, to: row.generation },
        });
        const action = await accepted(db, row);
        return { status: 202, body: { ...redactLastError(row), ...action.fields }, headers: action.headers };
      },
    }),
    jsonRoute({
      method: 'post',
      path: '/api/projects/:project/deployments/:env/rollback',
      operationId: 'rollbackDeployment',
      summary: 'Roll back to a release: by default the newest earlier healthy one that differs from the current one in image, commit or values; or the one named by `release` (a history id). Its commit and values are rendered again (sets desired_status = rollback, rollback_to = release).',
      tags: TAGS,
      access: 'deploy:promote',
      params: DeploymentParams,
      replayHeaders: locationOf,
      responses: {
        202: {
          description: 'Accepted: the actor rolls back to `target`; follow the action at `links.action` (also the Location).',
          schema: RollbackAccepted,
          headers: { Location: 'URL of the action.', ...etagHeader },
        },
        404: { description: 'No such deployment (or outside the token\'s scope), or `release` is not a release of it.' },
        409: { description: 'No previous healthy version to roll back to, or `release` did not succeed.' },
      },
      // optional: `keelson rollback` and older clients send none
      body: RollbackBody,
      bodyOptional: true,
      handler: async ({ db, principal, params, audit, body }) => {
        const before = await loadDeployment(db, principal, params.project, params.env);
        await assertPlacementAllowed(db, params.project, placementOf(before));
        const release = body.release ?? null;
        const choice = await chooseRollbackTarget(db, before.id, release, `${params.project}/${params.env}`);
        if (choice.kind === 'refused') {
          throw new ApiError(choice.status, choice.status === 404 ? 'release_not_found' : 'release_not_succeeded', choice.reason);
        }
        if (choice.kind === 'none') {
          throw new ApiError(409, 'no_rollback_target', `${params.project}/${params.env} has no previous healthy version to roll back to; deploy a known-good image with PATCH instead.`);
        }
        const target = choice.release;
        const row = await db.one(sql.type(DeploymentRow)`
          update deployments set desired_status = 'rollback', rollback_to = ${release} where id = ${before.id} returning ${DEPLOYMENT_COLUMNS}`);
        await audit('deployment.rollback', `${row.project}/${row.environment}`, {
          from_image_ref: before.image_ref,
          target_image_ref: target.image_ref,
          target_release: target.history_id,
          generation: { from: before.generation, to: row.generation },
        });
        const action = await accepted(db, row);
        return {
          status: 202,
          body: { deployment: redactLastError(row), target: { image_ref: target.image_ref, sha: target.sha, history_id: target.history_id }, generation: row.generation, ...action.fields },
          headers: action.headers,
        };
      },
    }),
    jsonRoute({
      method: 'post',
      path: '/api/projects/:project/deployments/:env/canary/:command',
      operationId: 'commandCanary',
      summary: 'Pause, resume, promote or abort the canary in flight (sets canary_command, which keelson consumes). No new generation: the canary goes on as told.',
      tags: TAGS,
      access: 'deploy:promote',
      params: CanaryParams,
      responses: {
        202: { description: 'Accepted: the actor is told; without a canary in flight the command is consumed and changes nothing.', schema: CanaryCommandAccepted },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
      },
      handler: async ({ db, principal, params, audit }) => {
        const before = await loadDeployment(db, principal, params.project, params.env);
        const row = await db.one(sql.type(DeploymentRow)`
          update deployments set canary_command = ${params.command} where id = ${before.id} returning ${DEPLOYMENT_COLUMNS}`);
        await audit(`deployment.canary.${params.command}`, `${row.project}/${row.environment}`, { generation: row.generation });
        return { status: 202, body: { command: params.command, generation: row.generation, current_status: row.current_status } };
      },
    }),
    jsonRoute({
      method: 'delete',
      path: '/api/projects/:project/deployments/:env',
      operationId: 'deleteDeployment',
      summary: 'Tear the deployment down: sets desired_status = deleted. keelson deletes every object of it from the cluster, records a `teardown` history row (kept after the row is gone) and deletes the row.',
      tags: TAGS,
      access: 'deploy:promote',
      params: DeploymentParams,
      replayHeaders: locationOf,
      responses: {
        202: {
          description: 'Accepted: the actor tears the deployment down; `links.action` (also the Location) shows it running, and GET answers 404 once it is done.',
          schema: TeardownAccepted,
          headers: { Location: 'URL of the action.', ...etagHeader },
        },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
      },
      handler: async ({ db, principal, params, audit }) => {
        const before = await loadDeployment(db, principal, params.project, params.env);
        // no placement check: tearing down is always allowed, even where the policy changed since
        const row = await db.maybeOne(sql.type(DeploymentRow)`
          update deployments set desired_status = 'deleted' where id = ${before.id} returning ${DEPLOYMENT_COLUMNS}`);
        if (!row) throw notFound(`No deployment ${params.project}/${params.env}: it is gone already.`);
        await audit('deployment.delete', `${row.project}/${row.environment}`, { generation: { from: before.generation, to: row.generation } });
        const action = await accepted(db, row);
        return {
          status: 202,
          body: { deployment: redactLastError(row), generation: row.generation, ...action.fields },
          headers: action.headers,
        };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/projects/:project/deployments/:env/actions/:generation',
      operationId: 'getDeploymentAction',
      summary: 'The action a generation of the desired state started: its status and phases, live while it runs.',
      description:
        'Every change of the desired state (through the API or by SQL) makes a new generation, and the actor acts on it: ' +
        '`pending` until it picks it up, `running` with the phases finished so far (from the persisted snapshot), then ' +
        '`succeeded`, `failed` or `superseded` (from history; a newer generation arrived first). Poll it, or follow ' +
        '`links.events`, until the status is final.',
      tags: TAGS,
      access: 'deploy:read',
      params: ActionParams,
      responses: {
        200: { description: 'The action.', schema: Action },
        404: { description: 'No such deployment or generation (or outside the token\'s scope).' },
      },
      handler: async ({ db, principal, params }) => {
        const row = await loadDeployment(db, principal, params.project, params.env);
        const view = params.generation <= row.generation ? await loadAction(db, row, params.generation) : null;
        if (!view) {
          throw notFound(`${params.project}/${params.env} has no generation ${params.generation}; its newest is ${row.generation}.`);
        }
        return { status: 200, body: { ...redactAction(view), links: actionLinks(row.project, row.environment, params.generation, 'action') } };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/projects/:project/deployments/:env/history',
      operationId: 'listDeploymentHistory',
      summary: 'Completed actions (deploy, rollback, stop, ...), newest first.',
      tags: TAGS,
      access: 'deploy:read',
      params: DeploymentParams,
      query: PageQuery,
      responses: {
        200: { description: 'A page of history.', schema: page(History) },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
      },
      handler: async ({ db, principal, params, query }) => {
        const row = await loadDeployment(db, principal, params.project, params.env);
        const limit = query.limit ?? 50;
        const rows = await db.any(sql.type(HistoryRow)`
          select id, deployment_id, action_id, action, status, image_ref, sha, generation, phases, error, triggered_by, created_at,
                 values_hash, values_redacted, inventory, ops_repo_id::text, manifest_path
          from deployment_history where deployment_id = ${row.id} and ${pageFragment(query.before)}
          order by id desc limit ${limit + 1}`);
        return { status: 200, body: paginate(rows.map(redactHistoryError), limit) };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/projects/:project/deployments/:env/transitions',
      operationId: 'listDeploymentTransitions',
      summary: 'State transitions of the actor, newest first.',
      tags: TAGS,
      access: 'deploy:read',
      params: DeploymentParams,
      query: PageQuery,
      responses: {
        200: { description: 'A page of transitions.', schema: page(Transition) },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
      },
      handler: async ({ db, principal, params, query }) => {
        const row = await loadDeployment(db, principal, params.project, params.env);
        const limit = query.limit ?? 50;
        const rows = await db.any(sql.type(TransitionRow)`
          select id, deployment_id, from_state, to_state, event, generation, seq, at, action_id, image_ref, attempt, last_error
          from deployment_transitions where deployment_id = ${row.id} and ${pageFragment(query.before)}
          order by id desc limit ${limit + 1}`);
        return { status: 200, body: paginate(rows.map(redactLastError), limit) };
      },
    }),
    rawRoute({
      method: 'get',
      path: '/api/projects/:project/deployments/:env/events',
      operationId: 'streamDeploymentEvents',
      summary: 'Server-Sent Events: `event: transition`, `id: <seq>`, data = the transition row, as journaled.',
      description: 'Send `Last-Event-ID` (or `?last_event_id=`) to replay transitions after that seq; otherwise the stream starts with the next transition. A `: heartbeat` comment is sent every 15 s.',
      tags: TAGS,
      access: 'deploy:read',
      params: DeploymentParams,
      query: EventsQuery,
      headers: [{ name: 'Last-Event-ID', description: 'Replay transitions with a greater seq.' }],
      responses: {
        200: { description: 'An event stream of transitions.', contentType: 'text/event-stream' },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
        429: { description: 'The token, or the server, has as many event streams open as allowed (`too_many_streams`); Retry-After says when to retry.' },
        503: { description: 'The event listener could not connect to the database.' },
      },
      handler: async ({ db, principal, params, query, req }, res) => {
        const row = await loadDeployment(db, principal, params.project, params.env);
        const header = req.get('last-event-id');
        let lastSeq: number | undefined = query.last_event_id;
        if (header !== undefined) {
          const parsed = LastEventId.safeParse(header.trim());
          if (!parsed.success) {
            throw new ApiError(400, 'invalid_request', 'Last-Event-ID must be the seq of an event received before (an integer from 0 to 2^53-1).', {
              details: [{ field: 'Last-Event-ID', message: 'expected a non-negative integer below 2^53' }],
            });
          }
          lastSeq = parsed.data;
        }
        const slot = deps.streams.reserve(principal);
        try {
          await deps.hub.ready();
          lastSeq ??= (
            await db.one(sql.type(z.object({ seq: z.number() }))`
              select coalesce(max(seq), 0)::bigint as seq from deployment_transitions where deployment_id = ${row.id}`)
          ).seq;
        } catch (error) {
          slot.release();
          throw new ApiError(503, 'events_unavailable', `The event stream is unavailable: ${redactSecrets(errorMessage(error))}. Retry shortly.`, {
            headers: { 'Retry-After': '2' },
          });
        }
        let unsubscribe = () => {};
        const stream = slot.open(req, res, () => unsubscribe());
        unsubscribe = deps.hub.subscribe(row.id, lastSeq, {
          send: (transition) => stream.write(`id: ${transition.seq}\nevent: transition\ndata: ${JSON.stringify(redactLastError(transition))}\n\n`),
          end: stream.end,
        });
      },
    }),
  ];
}

const LastEventId = cursor('expected the seq of an event received before');
