// /api/admin/projects: project policies (src/tenancy/policy.ts), managed by admins without a
// project scope (a project's own admin must not widen its own policy); and
// /api/projects/:project/policy, where a project's tokens read the policy in force for them.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { PROJECT_COLUMNS, policyJson, ProjectRow, resolvePolicy } from '../tenancy/policy.ts';
import { getProjectRow, PROJECT_ROW_COLUMNS } from '../tenancy/sql/getProjectPolicy.ts';
import { ApiError, notFound } from './httpErrors.ts';
import { jsonRoute, type AnyRoute } from './route.ts';
import { CreateProjectBody, PatchProjectBody, ProjectNameParams, ProjectParams } from './schemas.ts';
import { canSeeProject } from './tokens.ts';

const TAGS = ['projects'];

const Patterns = z.array(z.string());
export const EffectivePolicy = z.object({
  namespaces: Patterns,
  source_repos: Patterns,
  manifest_paths: Patterns,
  namespace_resource_whitelist: Patterns,
  namespace_resource_blacklist: Patterns,
  cluster_resource_whitelist: Patterns,
  allow_adoption: z.boolean(),
  source: z.enum(['row', 'default']).meta({ description: 'row: from the projects table; default: the project has no row.' }),
});
export const Project = ProjectRow.extend({
  effective: EffectivePolicy.meta({ description: 'The policy in force: the row with every null column replaced by its default.' }),
}).meta({ description: 'A projects row; a null pattern column means the default.' });
const ProjectList = z.object({ items: z.array(Project) });
const ProjectPolicy = z.object({ project: z.string(), policy: EffectivePolicy });

const withEffective = (row: ProjectRow) => ({ ...row, effective: policyJson(resolvePolicy(row.name, row)) });

async function loadProject(db: CommonQueryMethods, name: string): Promise<ProjectRow> {
  const row = await getProjectRow(db, name);
  if (!row) throw notFound(`Project ${name} has no policy row (the default policy applies); create one with POST /api/admin/projects.`);
  return row;
}

/** The policy columns a body sets: arrays as text[], null to return to the default. */
function policySets(body: Partial<Record<(typeof PROJECT_COLUMNS)[number], readonly string[] | null>>) {
  return PROJECT_COLUMNS.filter((column) => body[column] !== undefined).map((column) => {
    const value = body[column];
    return sql.fragment`${sql.identifier([column])} = ${value === null || value === undefined ? null : sql.array([...value], 'text')}`;
  });
}

export function projectRoutes(): AnyRoute[] {
  return [
    jsonRoute({
      method: 'get',
      path: '/api/admin/projects',
      operationId: 'listProjects',
      summary: 'List the projects that have a policy row (every other project has the default policy).',
      tags: TAGS,
      access: 'admin-global',
      responses: { 200: { description: 'Projects by name.', schema: ProjectList } },
      handler: async ({ db }) => {
        const rows = await db.any(sql.type(ProjectRow)`select ${PROJECT_ROW_COLUMNS} from projects order by name`);
        return { status: 200, body: { items: rows.map(withEffective) } };
      },
    }),
    jsonRoute({
      method: 'post',
      path: '/api/admin/projects',
      operationId: 'createProject',
      summary: "Give a project a policy (omitted fields keep their defaults).",
      tags: TAGS,
      access: 'admin-global',
      body: CreateProjectBody,
      responses: {
        201: { description: 'Created.', schema: Project, headers: { Location: 'URL of the project.' } },
        409: { description: 'The project already has a policy row (`project_exists`); change it with PATCH.' },
      },
      replayHeaders: (body): Record<string, string> => {
        const name = (body as { name?: string }).name;
        return name ? { Location: `/api/admin/projects/${name}` } : {};
      },
      handler: async ({ db, body, audit }) => {
        let row = await db.maybeOne(sql.type(ProjectRow)`
          insert into projects (name, description, allow_adoption)
          values (${body.name}, ${body.description ?? ''}, ${body.allow_adoption ?? false})
          on conflict (name) do nothing
          returning ${PROJECT_ROW_COLUMNS}`);
        if (!row) {
          throw new ApiError(409, 'project_exists', `Project ${body.name} already has a policy; change it with PATCH /api/admin/projects/${body.name}.`, {
            details: [{ field: 'name', message: 'expected a project without a policy row' }],
          });
        }
        // the same transaction: a pattern the database refuses undoes the insert too
        const sets = policySets(body);
        if (sets.length > 0) {
          row = await db.one(sql.type(ProjectRow)`
            update projects set ${sql.join(sets, sql.fragment`, `)} where name = ${body.name} returning ${PROJECT_ROW_COLUMNS}`);
        }
        await audit('project.create', `project/${row.name}`, { ...body });
        return { status: 201, body: withEffective(row), headers: { Location: `/api/admin/projects/${row.name}` } };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/admin/projects/:name',
      operationId: 'getProject',
      summary: "A project's policy row.",
      tags: TAGS,
      access: 'admin-global',
      params: ProjectNameParams,
      responses: { 200: { description: 'The project.', schema: Project }, 404: { description: 'The project has no policy row.' } },
      handler: async ({ db, params }) => ({ status: 200, body: withEffective(await loadProject(db, params.name)) }),
    }),
    jsonRoute({
      method: 'patch',
      path: '/api/admin/projects/:name',
      operationId: 'updateProject',
      summary: "Change a project's policy (null returns a field to its default). Applies to the next render of every deployment of the project.",
      tags: TAGS,
      access: 'admin-global',
      params: ProjectNameParams,
      body: PatchProjectBody,
      responses: { 200: { description: 'The updated project.', schema: Project }, 404: { description: 'The project has no policy row.' } },
      handler: async ({ db, params, body, audit }) => {
        await loadProject(db, params.name);
        const sets = [
          ...(body.description !== undefined ? [sql.fragment`description = ${body.description}`] : []),
          ...(body.allow_adoption !== undefined ? [sql.fragment`allow_adoption = ${body.allow_adoption}`] : []),
          ...policySets(body),
        ];
        const row = await db.one(sql.type(ProjectRow)`
          update projects set ${sql.join(sets, sql.fragment`, `)}, updated_at = now()
          where name = ${params.name} returning ${PROJECT_ROW_COLUMNS}`);
        await audit('project.update', `project/${row.name}`, { ...body });
        return { status: 200, body: withEffective(row) };
      },
    }),
    jsonRoute({
      method: 'delete',
      path: '/api/admin/projects/:name',
      operationId: 'deleteProject',
      summary: "Remove a project's policy row: its deployments get the default policy at their next render.",
      tags: TAGS,
      access: 'admin-global',
      params: ProjectNameParams,
      responses: { 204: { description: 'Deleted.' }, 404: { description: 'The project has no policy row.' } },
      handler: async ({ db, params, audit }) => {
        const row = await loadProject(db, params.name);
        await db.query(sql.unsafe`delete from projects where name = ${params.name}`);
        await audit('project.delete', `project/${row.name}`, {});
        return { status: 204, body: null };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/projects/:project/policy',
      operationId: 'getProjectPolicy',
      summary: 'The policy in force for a project: where its deployments may go and what they may create.',
      tags: TAGS,
      access: 'deploy:read',
      params: ProjectParams,
      responses: { 200: { description: 'The effective policy.', schema: ProjectPolicy }, 404: { description: "The project is outside the token's scope." } },
      handler: async ({ db, principal, params }) => {
        if (principal && !canSeeProject(principal, params.project)) throw notFound(`No project "${params.project}" is visible to this token.`);
        const row = await getProjectRow(db, params.project);
        return { status: 200, body: { project: params.project, policy: policyJson(resolvePolicy(params.project, row)) } };
      },
    }),
  ];
}
