// The fleet view's reads (issue #17): counts by state over every visible deployment (overall and
// per project), the deployments that need attention (failed, or an action in flight) with their
// age in state, and one page of deployments under filters. Built for 10,000 deployments: counts
// are one GROUP BY, pages are LIMIT/OFFSET over (project, environment) — the unique index — and
// the attention list is bounded. Live updates: the page re-reads on GET /api/events hints.
import { sql } from 'slonik';
import { z } from 'zod';
import { CURRENT_STATUSES } from '../db/rows.ts';
import { notFound } from './httpErrors.ts';
import { redactLastError } from './redact.ts';
import { jsonRoute, type AnyRoute } from './route.ts';
import { DeploymentSummary, Name } from './schemas.ts';
import { canSeeProject, type Principal } from './tokens.ts';

const TAGS = ['fleet'];
export const IN_FLIGHT = ['syncing', 'applying', 'verifying', 'rolling-back', 'tearing-down'] as const;
export const ATTENTION_LIMIT = 100;
const STATE_FILTERS = [...CURRENT_STATUSES, 'in-flight'] as const;

const stateMessage = `expected one of ${STATE_FILTERS.join(', ')}`;
const envMessage = 'expected the start of an environment name: 1-63 lowercase letters, digits or "-"';
const limitMessage = 'expected an integer from 1 to 500';
const offsetMessage = 'expected an integer from 0 to 1000000';
const intIn = (message: string, min: number, max: number) =>
  z.string({ error: message }).regex(/^\d{1,7}$/, message).transform(Number).pipe(z.number().int().min(min, message).max(max, message));

export const FleetQuery = z.strictObject({
  project: Name.optional().meta({ description: 'Only this project.' }),
});

export const FleetDeploymentsQuery = z.strictObject({
  project: Name.optional().meta({ description: 'Only this project.' }),
  environment: z.string({ error: envMessage }).regex(/^[a-z0-9-]{1,63}$/, envMessage).optional()
    .meta({ description: 'Environments starting with this text (e.g. `prod` matches prod and prod-eu).' }),
  state: z.enum(STATE_FILTERS, { error: stateMessage }).optional()
    .meta({ description: 'A current_status, or `in-flight` for syncing, applying, verifying, rolling-back and tearing-down.' }),
  limit: intIn(limitMessage, 1, 500).optional().meta({ description: 'Page size, 1-500 (default 50).' }),
  offset: intIn(offsetMessage, 0, 1_000_000).optional().meta({ description: 'Rows to skip (default 0).' }),
});

const Counts = z.record(z.string(), z.number().int()).meta({ description: 'Deployments per current_status; every state is present, 0 when none.' });

export const FleetDeployment = DeploymentSummary.extend({
  in_state_ms: z.number().int().meta({ description: 'Milliseconds since current_status last changed (status_changed_at).' }),
});

export const FleetSummary = z.object({
  total: z.number().int(),
  by_state: Counts,
  projects: z.array(z.object({ project: z.string(), total: z.number().int(), by_state: Counts }))
    .meta({ description: 'Per project, by name.' }),
  attention: z.array(FleetDeployment).meta({ description: `Failed or in-flight deployments, longest in their state first (at most ${ATTENTION_LIMIT}).` }),
  attention_total: z.number().int(),
  at: z.string().meta({ description: 'Server time of the counts.' }),
});

export const FleetPage = z.object({
  items: z.array(FleetDeployment),
  total: z.number().int().meta({ description: 'Rows matching the filters.' }),
  offset: z.number().int(),
  limit: z.number().int(),
});

const SUMMARY = sql.fragment`
  id, project, environment, image_ref, desired_status, current_status, current_image_ref, deployed_at,
  generation, observed_generation, last_error, status_changed_at,
  (extract(epoch from (now() - status_changed_at)) * 1000)::bigint as in_state_ms`;

/** The project filter within the token's scope; a project the token cannot see is a 404. */
function projectFilter(principal: Principal | null, project: string | undefined): string | null {
  if (project !== undefined && principal && !canSeeProject(principal, project)) {
    throw notFound(`No project "${project}" is visible to this token.`);
  }
  return project ?? principal?.project ?? null;
}

const zeroCounts = () => Object.fromEntries(CURRENT_STATUSES.map((s) => [s, 0])) as Record<string, number>;

export function fleetRoutes(): AnyRoute[] {
  return [
    jsonRoute({
      method: 'get',
      path: '/api/fleet',
      operationId: 'getFleet',
      summary: 'Counts by state (overall and per project) and the deployments needing attention, for every deployment the token can see.',
      tags: TAGS,
      access: 'deploy:read',
      query: FleetQuery,
      responses: {
        200: { description: 'The fleet summary.', schema: FleetSummary },
        404: { description: "The project is outside the token's scope." },
      },
      handler: async ({ db, principal, query }) => {
        const project = projectFilter(principal, query.project);
        const where = sql.fragment`(${project}::text is null or project = ${project})`;
        const counts = await db.any(sql.type(z.object({ project: z.string(), current_status: z.string(), n: z.number() }))`
          select project, current_status, count(*)::int as n from deployments where ${where}
          group by project, current_status order by project`);
        const attention = await db.any(sql.type(FleetDeployment)`
          select ${SUMMARY} from deployments
          where ${where} and current_status = any(${sql.array(['failed', ...IN_FLIGHT], 'text')})
          order by status_changed_at, project, environment limit ${ATTENTION_LIMIT}`);
        const byState = zeroCounts();
        const projects = new Map<string, { project: string; total: number; by_state: Record<string, number> }>();
        let attentionTotal = 0;
        for (const c of counts) {
          byState[c.current_status] = (byState[c.current_status] ?? 0) + c.n;
          let p = projects.get(c.project);
          if (!p) projects.set(c.project, (p = { project: c.project, total: 0, by_state: zeroCounts() }));
          p.total += c.n;
          p.by_state[c.current_status] = c.n;
          if (c.current_status === 'failed' || (IN_FLIGHT as readonly string[]).includes(c.current_status)) attentionTotal += c.n;
        }
        return {
          status: 200,
          body: {
            total: counts.reduce((sum, c) => sum + c.n, 0),
            by_state: byState,
            projects: [...projects.values()],
            attention: attention.map(redactLastError),
            attention_total: attentionTotal,
            at: new Date().toISOString(),
          },
        };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/fleet/deployments',
      operationId: 'listFleetDeployments',
      summary: 'One page of the deployments the token can see, filtered by project, environment prefix and state, ordered by project and environment.',
      tags: TAGS,
      access: 'deploy:read',
      query: FleetDeploymentsQuery,
      responses: {
        200: { description: 'A page of deployments with the total matching the filters.', schema: FleetPage },
        404: { description: "The project is outside the token's scope." },
      },
      handler: async ({ db, principal, query }) => {
        const project = projectFilter(principal, query.project);
        const limit = query.limit ?? 50;
        const offset = query.offset ?? 0;
        const env = query.environment ?? null;
        const states = query.state === undefined ? null : query.state === 'in-flight' ? [...IN_FLIGHT] : [query.state];
        const where = sql.fragment`
          (${project}::text is null or project = ${project})
          and (${env}::text is null or starts_with(environment, ${env}))
          and (${states === null ? null : sql.array(states, 'text')}::text[] is null or current_status = any(${states === null ? null : sql.array(states, 'text')}::text[]))`;
        const total = await db.oneFirst(sql.type(z.object({ n: z.number() }))`select count(*)::int as n from deployments where ${where}`);
        const items = await db.any(sql.type(FleetDeployment)`
          select ${SUMMARY} from deployments where ${where}
          order by project, environment limit ${limit} offset ${offset}`);
        return { status: 200, body: { items: items.map(redactLastError), total, offset, limit } };
      },
    }),
  ];
}
