import { sql } from 'slonik';
import type { CommonQueryMethods } from 'slonik';
import { ProjectRow, resolvePolicy, type Policy } from '../policy.ts';

export const PROJECT_ROW_COLUMNS = sql.fragment`
  name, description, namespaces, source_repos, manifest_paths, namespace_resource_whitelist,
  namespace_resource_blacklist, cluster_resource_whitelist, allow_adoption, created_at, updated_at`;

/** The project's `projects` row, or null when it has none (the default policy applies). */
export async function getProjectRow(db: Pick<CommonQueryMethods, 'maybeOne'>, project: string): Promise<ProjectRow | null> {
  return await db.maybeOne(sql.type(ProjectRow)`select ${PROJECT_ROW_COLUMNS} from projects where name = ${project}`);
}

/** The policy in force for `project`: its row's, or the default. */
export async function getProjectPolicy(db: Pick<CommonQueryMethods, 'maybeOne'>, project: string): Promise<Policy> {
  return resolvePolicy(project, await getProjectRow(db, project));
}
