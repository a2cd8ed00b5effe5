// Every HTTP input and output of the API as a zod schema; /openapi.json is generated from these.
import { z } from 'zod';
import { CLUSTER_KINDS } from '../config.ts';
import { assertSafeRepoUrl, redactRepoUrl } from '../opsrepo/repoUrl.ts';
import { ACTION_STATUSES } from '../actions/status.ts';
import { CanaryView } from './canaryView.ts';
import { CANARY_COMMANDS, DESIRED_STATUSES, DRIFT_MODES, DeploymentRow, HISTORY_ACTIONS, HistoryPhase, HistoryRow, NAME_PATTERN, OpsRepoRow, TransitionRow } from '../db/rows.ts';
import { branchProblem, imageRefProblem, repoPathProblem, valuesProblem } from '../tenancy/inputRules.ts';
import { descriptionProblem, MAX_PATTERNS, patternProblem, PROJECT_COLUMNS, type PatternColumn } from '../tenancy/policy.ts';

/** A string schema refined by one of the shared input rules (src/tenancy/inputRules.ts). */
const ruled = (rule: (value: string) => string | null, expected: string) =>
  z.string({ error: expected }).superRefine((value, ctx) => {
    const problem = rule(value);
    if (problem) ctx.addIssue({ code: 'custom', message: `${expected}: ${problem}` });
  });

const nameMessage = 'expected a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit';
export const Name = z.string({ error: nameMessage }).regex(NAME_PATTERN, nameMessage);

export const ImageRef = ruled(imageRefProblem, 'expected an image reference such as registry.example/shop:1.4.2');

export const DesiredStatus = z.enum(DESIRED_STATUSES, { error: `expected one of ${DESIRED_STATUSES.join(', ')}` });
export const Drift = z.enum(DRIFT_MODES, { error: `expected one of ${DRIFT_MODES.join(', ')}` }).meta({
  description: 'What the healthy actor does with objects that differ from the current release: `repair` (default) re-applies them; `detect` only writes `drift_detected`.',
});

// The app refuses bodies nested deeper than 40 levels before any schema runs (app.ts), so the
// walks below never meet a hostile 10,000-deep document.
export const ValuesOverride = z
  .record(z.string(), z.unknown(), { error: 'expected a JSON object of template values' })
  .superRefine((value, ctx) => {
    const problem = valuesProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: `expected a JSON object of template values at most 32 levels deep and 256 KiB: ${problem}` });
  })
  .meta({ description: 'A JSON object merged over the ops repo values; at most 32 levels deep and 256 KiB.' });

export const RelativePath = ruled(repoPathProblem, 'expected a relative path inside the ops repo, without ".." segments, such as apps/shop');

export const Uuid = z.uuid({ error: 'expected a UUID such as 5f0c6a8e-1f2b-4c3d-9e8f-0a1b2c3d4e5f' });

// ---- path parameters and queries -----------------------------------------------------------

export const ProjectParams = z.object({ project: Name });
export const DeploymentParams = z.object({ project: Name, env: Name });
export const OpsRepoParams = z.object({ id: Uuid });

/** A numeric cursor (an id or seq): 0 to 2^53-1, so it is exact in JavaScript and fits bigint. */
export const cursor = (message: string, min = 0) =>
  z
    .string({ error: message })
    .regex(/^\d{1,16}$/, message)
    .transform(Number)
    .pipe(z.number().int(message).min(min, message).max(Number.MAX_SAFE_INTEGER, message));

const positiveInt = (message: string) => cursor(message, 1);

// Query objects are strict: an unknown parameter, or `project[]=x` (a different name), is a 400
// rather than silently ignored; a repeated parameter arrives as an array and fails its type.
export const PageQuery = z.strictObject({
  limit: z
    .string()
    .regex(/^\d+$/, 'expected an integer from 1 to 500')
    .transform(Number)
    .pipe(z.number().int().min(1, 'expected an integer from 1 to 500').max(500, 'expected an integer from 1 to 500'))
    .optional()
    .meta({ description: 'Page size, 1-500 (default 50).' }),
  before: positiveInt('expected a positive integer: the `next` value of the previous page')
    .optional()
    .meta({ description: 'Cursor: return items with an id below this one (the `next` of the previous page).' }),
});

export const ListDeploymentsQuery = z.strictObject({ project: Name.optional().meta({ description: 'Only this project.' }) });

export const EventsQuery = z.strictObject({
  last_event_id: cursor('expected the seq of the last event received (an integer from 0 to 2^53-1)')
    .optional()
    .meta({ description: 'Replay transitions after this seq (alternative to the Last-Event-ID header).' }),
});

// ---- request bodies ------------------------------------------------------------------------

export const CreateDeploymentBody = z
  .strictObject({
    environment: Name,
    image_ref: ImageRef,
    desired_status: DesiredStatus.optional(),
    values_override: ValuesOverride.optional(),
    ops_repo: Name.optional().meta({ description: 'Name of an ops repo (alternative to ops_repo_id).' }),
    ops_repo_id: Uuid.nullable().optional(),
    manifest_path: RelativePath.nullable().optional(),
    namespace: Name.nullable().optional(),
    auto_rollback: z.boolean({ error: 'expected true or false' }).optional(),
    drift: Drift.optional(),
  })
  .superRefine((body, ctx) => {
    if (body.ops_repo !== undefined && body.ops_repo_id != null) {
      ctx.addIssue({ code: 'custom', path: ['ops_repo'], message: 'expected either ops_repo or ops_repo_id, not both' });
    }
  });

export const PatchDeploymentBody = z
  .strictObject({
    image_ref: ImageRef.optional(),
    desired_status: DesiredStatus.optional(),
    values_override: ValuesOverride.optional(),
    auto_rollback: z.boolean({ error: 'expected true or false' }).optional(),
    drift: Drift.optional(),
  })
  .refine((body) => Object.keys(body).length > 0, {
    message: 'expected at least one of image_ref, desired_status, values_override, auto_rollback, drift',
  });

// The syncer's own shape rule (src/opsrepo/repoUrl.ts), so a URL the API accepts can always be
// synced. Whether file:// is allowed is the operator's setting: the route checks it.
export const RepoUrl = z
  .string({ error: 'expected a git URL' })
  .min(1, 'expected a git URL')
  .superRefine((url, ctx) => {
    try {
      assertSafeRepoUrl(url, { allowFileRepos: true });
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: redactRepoUrl((error as Error).message) });
    }
  });

export const Branch = ruled(branchProblem, 'expected a git branch name such as main');

/** Write-only: the API never returns it. */
export const WebhookSecret = z
  .string({ error: 'expected 16-256 visible ASCII characters' })
  .regex(/^[\x21-\x7e]{16,256}$/, 'expected 16-256 visible ASCII characters (generate one with `openssl rand -hex 32`)')
  .nullable()
  .meta({ description: 'Shared secret of push webhooks (GitHub: the webhook secret; GitLab: the secret token). Write-only; null removes it.' });

const SyncInterval = z
  .number({ error: 'expected an integer number of seconds from 0 to 86400' })
  .int('expected an integer number of seconds from 0 to 86400')
  .min(0, 'expected an integer number of seconds from 0 to 86400')
  .max(86400, 'expected an integer number of seconds from 0 to 86400');

export const CreateOpsRepoBody = z.strictObject({
  name: Name,
  repo_url: RepoUrl,
  branch: Branch.optional(),
  path: z.union([z.literal(''), RelativePath]).optional(),
  sync_interval_s: SyncInterval.optional(),
  webhook_secret: WebhookSecret.optional(),
});

export const PatchOpsRepoBody = CreateOpsRepoBody.partial().refine((body) => Object.keys(body).length > 0, {
  message: 'expected at least one of name, repo_url, branch, path, sync_interval_s, webhook_secret',
});

// ---- project policies ------------------------------------------------------------------------

const patterns = (column: PatternColumn, description: string) =>
  z
    .array(
      z.string({ error: 'expected a pattern string' }).superRefine((pattern, ctx) => {
        const problem = patternProblem(column, pattern);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
      { error: 'expected an array of patterns' },
    )
    .max(MAX_PATTERNS, `expected at most ${MAX_PATTERNS} patterns`)
    .nullable()
    .meta({ description: `${description} null: the default.` });

const POLICY_DESCRIPTIONS: Record<PatternColumn, string> = {
  namespaces: 'Namespace globs deployments may use (! denies; a wildcard never matches kube-* or default). Default: ["<project>-*"].',
  source_repos: 'Ops repo name globs (! denies). Default: ["*"].',
  manifest_paths: 'Manifest path globs inside the ops repo (** crosses /; ! denies). Default: ["<project>", "<project>/**"].',
  namespace_resource_whitelist: 'group/Kind globs of namespaced kinds allowed; empty: all. Default: [].',
  namespace_resource_blacklist: 'group/Kind globs of namespaced kinds refused. Default: ["rbac.authorization.k8s.io/*"].',
  cluster_resource_whitelist: 'group/Kind globs of cluster-scoped kinds allowed; empty: none. Default: [].',
};

const policyFields = Object.fromEntries(PROJECT_COLUMNS.map((column) => [column, patterns(column, POLICY_DESCRIPTIONS[column]).optional()])) as {
  [K in PatternColumn]: z.ZodOptional<ReturnType<typeof patterns>>;
};

const Description = ruled(descriptionProblem, 'expected a printable description of at most 1000 characters');

export const CreateProjectBody = z.strictObject({
  name: Name,
  description: Description.optional(),
  ...policyFields,
  allow_adoption: z.boolean({ error: 'expected true or false' }).optional().meta({ description: 'Manifests may adopt existing objects (annotation keelson.dev/adopt: "true"). Default: false.' }),
});

export const PatchProjectBody = CreateProjectBody.omit({ name: true }).refine((body) => Object.keys(body).length > 0, {
  message: `expected at least one of description, ${PROJECT_COLUMNS.join(', ')}, allow_adoption`,
});

export const ProjectNameParams = z.object({ name: Name });

// ---- responses -----------------------------------------------------------------------------

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Stable machine-readable code, e.g. invalid_request, not_found.' }),
      message: z.string(),
      details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    }),
  })
  ;

export const Deployment = DeploymentRow;
export const History = HistoryRow;
export const Transition = TransitionRow;

export const DeploymentSummary = DeploymentRow.pick({
  id: true,
  project: true,
  environment: true,
  image_ref: true,
  desired_status: true,
  current_status: true,
  current_image_ref: true,
  deployed_at: true,
  generation: true,
  observed_generation: true,
  last_error: true,
  status_changed_at: true,
});

export const DeploymentList = z.object({ items: z.array(DeploymentSummary) });

export const SnapshotSummary = z.object({
  state: z.string(),
  seq: z.number().int(),
  updated_at: z.string(),
  machine_version: z.string(),
  status: z.string().nullable(),
  context: z.record(z.string(), z.unknown()).nullable().meta({ description: 'Scalar fields of the snapshot context (strings shortened).' }),
  canary: CanaryView.nullable().optional().meta({ description: 'The canary in flight: its steps, where it is, the split last asked for; null when none runs.' }),
});

export const LiveResource = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
  status: z.string(),
  message: z.string(),
});

export const LiveStatus = z.object({
  available: z.boolean(),
  namespace: z.string(),
  resources: z.array(LiveResource).optional(),
  error: z.string().optional(),
});

export const DeploymentDetail = z.object({
  deployment: Deployment,
  history: z.array(History),
  snapshot: SnapshotSummary.nullable(),
  live: LiveStatus,
});

export const ActionParams = z.object({
  project: Name,
  env: Name,
  generation: cursor('expected a generation of the deployment (an integer from 1)', 1),
});

export const ActionLinks = z.object({
  self: z.string().meta({ description: 'This resource.' }),
  action: z.string().meta({ description: 'The action (GET it to follow its phases until its status is final).' }),
  deployment: z.string(),
  events: z.string().meta({ description: 'Server-Sent Events of the deployment\'s transitions.' }),
});

const ActionKind = z.enum(HISTORY_ACTIONS);
const ActionStatus = z.enum(ACTION_STATUSES).meta({
  description: 'pending (not picked up yet), running, or final: succeeded, failed, superseded (a newer generation came first).',
});

/** What every mutation of a deployment adds to its answer: the action it started. */
const ACCEPTED = {
  action: ActionKind.meta({ description: 'The action this generation starts (predicted from the row until the actor picks it up).' }),
  status: ActionStatus,
  links: ActionLinks,
};

export const DeploymentAccepted = Deployment.extend(ACCEPTED);

export const Action = z.object({
  generation: z.number().int(),
  action: ActionKind,
  action_id: z.string().nullable(),
  status: ActionStatus,
  image_ref: z.string().nullable(),
  state: z.string().nullable().meta({ description: 'The actor state while the action runs (syncing.fetching, verifying, ...).' }),
  phases: z.array(HistoryPhase).meta({ description: 'Finished phases (sync, render, apply, verify, ...), live while running.' }),
  error: z.string().nullable(),
  auto_rollback: z
    .object({ status: z.enum(['succeeded', 'failed', 'superseded']), image_ref: z.string(), error: z.string().nullable() })
    .nullable()
    .meta({ description: 'A failed deploy that auto_rollback undid: the rollback\'s outcome.' }),
  superseded_by: z.number().int().nullable(),
  links: ActionLinks,
});

export const RollbackAccepted = z.object({
  deployment: Deployment,
  target: z.object({ image_ref: z.string(), sha: z.string().nullable(), history_id: z.number().int() }),
  generation: z.number().int(),
  ...ACCEPTED,
});

/**
 * A value the caller sent, repeated in an error message: at most 64 characters (whole code
 * points, so no pair is split) and JSON-quoted, so quotes, control characters and lone
 * surrogates arrive escaped and the message stays one readable line.
 */
export function quoteSent(value: unknown): string {
  if (typeof value !== 'string') return `a ${value === null ? 'null' : typeof value}`;
  const chars = Array.from(value);
  return JSON.stringify(chars.length > 64 ? `${chars.slice(0, 64).join('')}…` : value);
}

export const CanaryParams = DeploymentParams.extend({
  command: z.enum(CANARY_COMMANDS, { error: (issue) => `unknown command ${quoteSent(issue.input)}; expected one of ${CANARY_COMMANDS.join(', ')}` }).meta({ description: 'pause (the next step waits), resume, promote (all traffic to the new revision now) or abort (all traffic back to the stable revision; the action fails).' }),
});

export const CanaryCommandAccepted = z.object({
  command: z.enum(CANARY_COMMANDS),
  generation: z.number().int().meta({ description: 'The generation whose canary the command is for; a command is no new generation.' }),
  current_status: z.string().meta({ description: 'The row as the command was written; a command with no canary in flight is consumed and changes nothing.' }),
});

export const TeardownAccepted = z.object({
  deployment: Deployment,
  generation: z.number().int().meta({ description: 'The generation whose action is the teardown; the row is gone once it succeeded.' }),
  ...ACCEPTED,
});

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next: z.number().int().nullable().meta({ description: 'Pass as `before` for the next page; null on the last page.' }) });

export const OpsRepo = OpsRepoRow.extend({
  webhook_secret_set: z.boolean().meta({ description: 'Whether push webhooks are enabled (the secret itself is never returned).' }),
}).meta({ description: 'repo_url credentials are shown as ***.' });
export const WebhookAccepted = z.object({ syncing: z.boolean(), reason: z.string() });
export const OpsRepoList = z.object({ items: z.array(OpsRepo) });
export const SyncResult = z.object({ sha: z.string(), fetched: z.boolean() });

export const Health = z.object({ status: z.literal('ok') });
export const Capabilities = z.object({
  version: z.string(),
  machine_version: z.string().meta({ description: 'The statechart version persisted snapshots carry.' }),
  targets: z.array(z.object({ name: z.string(), apply: z.string(), clusters: z.array(z.string()), cluster: z.string().nullable() })),
  renderers: z.array(z.object({ name: z.string(), description: z.string() })),
  sinks: z.array(z.string()).meta({ description: 'Notification sink kinds (notification_sinks.kind).' }),
  actions: z.array(z.string()),
  action_statuses: z.array(z.string()),
  desired_statuses: z.array(z.string()),
  event_types: z.array(z.string()).meta({ description: 'deployment_events types: <kind>.<outcome>, and health.degraded / health.recovered.' }),
  permissions: z.array(z.string()),
  limits: z.object({
    render: z.object({ timeout_ms: z.number(), max_heap_bytes: z.number(), max_objects: z.number(), max_bytes: z.number() }),
    sse: z.object({ per_token: z.number(), total: z.number(), max_buffer_bytes: z.number(), heartbeat_ms: z.number() }),
    values_override: z.object({ max_depth: z.number(), max_bytes: z.number() }),
    idempotency_ttl_ms: z.number(),
  }),
  features: z.record(z.string(), z.boolean()),
});

export const Ready = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.object({
    database: z.enum(['up', 'down']),
    runtime: z.enum(['up', 'down', 'absent']),
  }),
  /** the kinds only: a probe's body must not carry database addresses or credentials */
  mode: z.object({ cluster: z.enum(CLUSTER_KINDS), database: z.enum(['external', 'embedded']) }).optional(),
});
