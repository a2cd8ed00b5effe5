// What the statechart visualizer (/ui, src/ui/) reads, all behind the same bearer tokens as the
// rest of the API: the machine's structure, every deployment's persisted snapshot, and one
// event stream for all deployments the token can see.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { MACHINE_VERSION, deploymentMachine } from '../../machines/deployment.machine.ts';
import { TransitionRow } from '../db/rows.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactSecretObjects } from '../plans/secrets.ts';
import { machineGraph, type MachineGraph as Graph } from '../ui/machineGraph.ts';
import type { EventStream, EventStreams } from './eventStreams.ts';
import { ApiError, notFound } from './httpErrors.ts';
import { redactLastError, redactSecrets, redactSnapshotValues } from './redact.ts';
import { jsonRoute, rawRoute, type AnyRoute } from './route.ts';
import { DeploymentParams } from './schemas.ts';
import { canSeeProject, type Principal } from './tokens.ts';
import type { TransitionHub } from './transitionHub.ts';

const STATE_TYPES = ['atomic', 'compound', 'parallel', 'final', 'history'] as const;

export const MachineGraph = z.object({
  id: z.string(),
  version: z.string().meta({ description: 'MACHINE_VERSION, stored with every snapshot.' }),
  initial: z.string().nullable().meta({ description: "Id of the root's initial state." }),
  states: z.array(
    z.object({
      id: z.string().meta({ description: 'e.g. deployment.syncing.fetching' }),
      key: z.string(),
      path: z.string().meta({ description: "Dotted path as journaled, e.g. syncing.fetching; '' for the root." }),
      parent: z.string().nullable(),
      depth: z.number().int(),
      type: z.enum(STATE_TYPES),
      initial: z.string().nullable(),
      children: z.array(z.string()),
      invoke: z.array(z.object({ id: z.string(), src: z.string() })),
    }),
  ),
  transitions: z.array(
    z.object({
      id: z.string().meta({ description: '<source id>|<event or "always">|<index>' }),
      source: z.string(),
      targets: z.array(z.string()).meta({ description: 'Empty for a targetless transition.' }),
      event: z.string().meta({ description: "Event type; '' for always. Invocations: xstate.done.actor.<id>, xstate.error.actor.<id>." }),
      kind: z.enum(['event', 'always', 'after', 'done', 'error']),
      guard: z.string().nullable().meta({ description: 'Readable guard, e.g. and(isNewerGeneration, wantsActive).' }),
      actions: z.array(z.string()),
      reenter: z.boolean(),
      internal: z.boolean(),
    }),
  ),
});

export const PersistedSnapshot = z.object({
  state: z.string().nullable().meta({ description: 'Dotted state path; null before the actor journaled anything.' }),
  seq: z.number().int().nullable(),
  updated_at: z.string().nullable(),
  machine_version: z.string().nullable(),
  snapshot: z.unknown().meta({ description: 'The persisted XState snapshot as stored (credentials in URLs redacted); null when none.' }),
});

export const AllEventsTransition = TransitionRow.extend({ project: z.string(), environment: z.string() });

export interface VisualizerRouteDeps {
  readonly hub: TransitionHub;
  readonly log: Logger;
  readonly streams: EventStreams;
}

const TAGS = ['visualizer'];

function assertProjectVisible(principal: Principal | null, project: string): void {
  if (principal && !canSeeProject(principal, project)) throw notFound(`No project "${project}" is visible to this token.`);
}

export function visualizerRoutes(deps: VisualizerRouteDeps): AnyRoute[] {
  // the definition never changes while the process runs
  let graph: Graph | undefined;
  return [
    jsonRoute({
      method: 'get',
      path: '/api/machine',
      operationId: 'getMachine',
      summary: 'The deployment statechart: states, transitions (including always and invoke done/error), guards, actions.',
      description: 'Extracted from the machine definition the runtime runs (src/ui/machineGraph.ts), so it cannot drift from the code.',
      tags: TAGS,
      access: 'deploy:read',
      responses: { 200: { description: 'The machine structure.', schema: MachineGraph } },
      handler: async () => {
        graph ??= machineGraph(deploymentMachine, MACHINE_VERSION);
        return { status: 200, body: graph };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/projects/:project/deployments/:env/snapshot',
      operationId: 'getDeploymentSnapshot',
      summary: "The actor's persisted snapshot, whole (GET detail shows only its scalar context fields).",
      tags: TAGS,
      access: 'deploy:read',
      params: DeploymentParams,
      responses: {
        200: { description: 'The persisted snapshot; all fields null before the first journal write.', schema: PersistedSnapshot },
        404: { description: "No such deployment (or outside the token's scope)." },
      },
      handler: async ({ db, principal, params }) => {
        assertProjectVisible(principal, params.project);
        const row = await db.maybeOne(sql.type(
          z.object({ state: z.string().nullable(), seq: z.number().nullable(), updated_at: z.string().nullable(), machine_version: z.string().nullable(), snapshot: z.unknown() }),
        )`
          select s.state, s.seq, s.updated_at, s.machine_version, s.snapshot
          from deployments d left join deployment_snapshots s on s.deployment_id = d.id
          where d.project = ${params.project} and d.environment = ${params.env}`);
        if (!row) throw notFound(`No deployment ${params.project}/${params.env}.`);
        // Snapshots hold no rendered objects since machine version 2; one written before (not yet
        // restored) may still: Secret values are shown as content hashes. The context holds the
        // values_override (to render again): served redacted, as history serves values_redacted.
        const snapshot = row.snapshot == null ? null : JSON.parse(redactSecrets(JSON.stringify(redactSnapshotValues(redactSecretObjects(row.snapshot)))));
        return { status: 200, body: { ...row, snapshot } };
      },
    }),
    rawRoute({
      method: 'get',
      path: '/api/events',
      operationId: 'streamAllEvents',
      summary: 'Server-Sent Events for every deployment the token can see: `event: transition`, data = the transition row with project and environment.',
      description:
        'Starts with the next transition; there is no replay (no `id:`): after a reconnect, re-read GET /api/deployments. A `: heartbeat` comment is sent every 15 s. For one deployment with replay, use …/:env/events.',
      tags: TAGS,
      access: 'deploy:read',
      responses: {
        200: { description: 'An event stream of transitions (data: the transition row plus project and environment).', contentType: 'text/event-stream' },
        429: { description: 'The token, or the server, has as many event streams open as allowed (`too_many_streams`).' },
        503: { description: 'The event listener could not connect to the database.' },
      },
      handler: async ({ db, principal, req }, res) => {
        const slot = deps.streams.reserve(principal);
        try {
          await deps.hub.ready();
        } catch (error) {
          slot.release();
          throw new ApiError(503, 'events_unavailable', `The event stream is unavailable: ${redactSecrets(errorMessage(error))}. Retry shortly.`, {
            headers: { 'Retry-After': '2' },
          });
        }
        let unwatch = () => {};
        const stream = slot.open(req, res, () => unwatch());
        unwatch = openAllStream(deps, db, principal?.project ?? null, stream);
      },
    }),
  ];
}

const BATCH = 1000;

/**
 * One stream over every visible deployment. Notifications are hints: the stream keeps the last
 * seq it sent per deployment and re-reads the rows after it, in one query for every deployment
 * hinted meanwhile (a busy reader remembers "again"). Hints are watched BEFORE the baseline is
 * read, so a transition committed in between is either in the baseline or hinted afterwards.
 */
function openAllStream(deps: VisualizerRouteDeps, db: CommonQueryMethods, scope: string | null, stream: EventStream): () => void {
  const lastSeq = new Map<string, number>();
  const dirty = new Set<string>();
  let rescan = false;
  let ready = false;
  let running = false;
  const ended = stream.ended;

  const Known = z.object({ id: z.string(), seq: z.number() });
  const visible = sql.fragment`(${scope}::text is null or d.project = ${scope})`;

  const flush = async () => {
    if (running || !ready) return;
    running = true;
    try {
      while (!ended() && (rescan || dirty.size > 0)) {
        if (rescan) {
          // the listener reconnected: hints were lost, and deployments may have been created
          rescan = false;
          const ids = await db.any(sql.type(z.object({ id: z.string() }))`select d.id from deployments d where ${visible}`);
          for (const { id } of ids) {
            if (!lastSeq.has(id)) lastSeq.set(id, 0);
            dirty.add(id);
          }
        }
        const ids = [...dirty];
        dirty.clear();
        // an id unknown at open was created since: everything it journaled is new
        const seqs = ids.map((id) => lastSeq.get(id) ?? 0);
        const rows = await db.any(sql.type(AllEventsTransition)`
          select t.id, t.deployment_id, t.from_state, t.to_state, t.event, t.generation, t.seq, t.at,
                 t.action_id, t.image_ref, t.attempt, t.last_error, d.project, d.environment
          from unnest(${sql.array(ids, 'uuid')}, ${sql.array(seqs, 'int8')}) as c(id, seq)
          join deployment_transitions t on t.deployment_id = c.id and t.seq > c.seq
          join deployments d on d.id = t.deployment_id
          where ${visible}
          order by t.deployment_id, t.seq
          limit ${BATCH}`);
        for (const row of rows) {
          if (ended()) break;
          if (row.seq <= (lastSeq.get(row.deployment_id) ?? 0)) continue;
          stream.write(`event: transition\ndata: ${JSON.stringify(redactLastError(row))}\n\n`);
          lastSeq.set(row.deployment_id, row.seq);
        }
        if (rows.length === BATCH) for (const id of ids) dirty.add(id);
      }
    } catch (error) {
      deps.log.warn({ err: { message: redactSecrets(errorMessage(error)) } }, 'reading transitions for the all-deployments stream failed');
    } finally {
      running = false;
    }
  };

  const unwatch = deps.hub.watchAll((deploymentId) => {
    if (deploymentId === null) rescan = true;
    else dirty.add(deploymentId);
    void flush();
  });

  void db
    .any(sql.type(Known)`
      select d.id, coalesce(max(t.seq), 0)::bigint as seq
      from deployments d left join deployment_transitions t on t.deployment_id = d.id
      where ${visible} group by d.id`)
    .then((rows) => {
      for (const row of rows) lastSeq.set(row.id, Math.max(row.seq, lastSeq.get(row.id) ?? 0));
      ready = true;
      void flush();
    })
    .catch((error: unknown) => {
      deps.log.warn({ err: { message: redactSecrets(errorMessage(error)) } }, 'opening the all-deployments stream failed');
      stream.end();
    });
  return unwatch;
}
