// Every HTTP input and output of the API as a zod schema; /openapi.json is generated from these.
import { z } from 'zod';
import { CLUSTER_KINDS } from '../config.ts';
import { assertSafeRepoUrl, redactRepoUrl } from '../opsrepo/repoUrl.ts';
import { DESIRED_STATUSES, DeploymentRow, HistoryRow, NAME_PATTERN, OpsRepoRow, TransitionRow } from '../db/rows.ts';

const nameMessage = 'expected a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit';
export const Name = z.string({ error: nameMessage }).regex(NAME_PATTERN, nameMessage);

export const ImageRef = z
  .string({ error: 'expected an image reference such as registry.example/shop:1.4.2' })
  .min(1, 'expected an image reference such as registry.example/shop:1.4.2')
  .max(1024, 'expected at most 1024 characters')
  .regex(/^\S+$/, 'expected an image reference without whitespace, such as registry.example/shop:1.4.2');

export const DesiredStatus = z.enum(DESIRED_STATUSES, { error: `expected one of ${DESIRED_STATUSES.join(', ')}` });

export const ValuesOverride = z.record(z.string(), z.unknown(), { error: 'expected a JSON object of template values' });

const relativePathMessage = 'expected a relative path inside the ops repo, without ".." segments, such as apps/shop';
export const RelativePath = z
  .string({ error: relativePathMessage })
  .max(1024, 'expected at most 1024 characters')
  .refine((p) => !p.startsWith('/') && !p.startsWith('-') && !p.split(/[\\/]/).includes('..') && !/[\0\r\n]/.test(p), relativePathMessage);

export const Uuid = z.uuid({ error: 'expected a UUID such as 5f0c6a8e-1f2b-4c3d-9e8f-0a1b2c3d4e5f' });

// ---- path parameters and queries -----------------------------------------------------------

export const ProjectParams = z.object({ project: Name });
export const DeploymentParams = z.object({ project: Name, env: Name });
export const OpsRepoParams = z.object({ id: Uuid });

const positiveInt = (message: string) =>
  z.string().regex(/^\d+$/, message).transform(Number).pipe(z.number().int().positive(message));

export const PageQuery = z.object({
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

export const ListDeploymentsQuery = z.object({ project: Name.optional().meta({ description: 'Only this project.' }) });

export const EventsQuery = z.object({
  last_event_id: z
    .string()
    .regex(/^\d+$/, 'expected the seq of the last event received')
    .transform(Number)
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
  })
  .refine((body) => Object.keys(body).length > 0, {
    message: 'expected at least one of image_ref, desired_status, values_override, auto_rollback',
  });

// the syncer's own rule (src/opsrepo/repoUrl.ts), so a URL the API accepts can always be synced
export const RepoUrl = z
  .string({ error: 'expected a git URL' })
  .min(1, 'expected a git URL')
  .max(2048, 'expected at most 2048 characters')
  .superRefine((url, ctx) => {
    try {
      assertSafeRepoUrl(url);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: redactRepoUrl((error as Error).message) });
    }
  });

const branchMessage = 'expected a git branch name such as main (no whitespace, "..", leading "-" or special characters ~^:?*[\\)';
export const Branch = z
  .string({ error: branchMessage })
  .min(1, branchMessage)
  .max(255, branchMessage)
  .refine((b) => !b.startsWith('-') && !b.includes('..') && !/[\s~^:?*[\\\0]/.test(b) && !b.endsWith('/') && !b.endsWith('.lock'), branchMessage);

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
});

export const PatchOpsRepoBody = CreateOpsRepoBody.partial().refine((body) => Object.keys(body).length > 0, {
  message: 'expected at least one of name, repo_url, branch, path, sync_interval_s',
});

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

export const RollbackAccepted = z.object({
  deployment: Deployment,
  target: z.object({ image_ref: z.string(), sha: z.string().nullable(), history_id: z.number().int() }),
});

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next: z.number().int().nullable().meta({ description: 'Pass as `before` for the next page; null on the last page.' }) });

export const OpsRepo = OpsRepoRow.meta({ description: 'repo_url credentials are shown as ***.' });
export const OpsRepoList = z.object({ items: z.array(OpsRepo) });
export const SyncResult = z.object({ sha: z.string(), fetched: z.boolean() });

export const Health = z.object({ status: z.literal('ok') });
export const Ready = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.object({
    database: z.enum(['up', 'down']),
    runtime: z.enum(['up', 'down', 'absent']),
  }),
  /** the kinds only: a probe's body must not carry database addresses or credentials */
  mode: z.object({ cluster: z.enum(CLUSTER_KINDS), database: z.enum(['external', 'embedded']) }).optional(),
  errors: z.array(z.string()).optional(),
});
