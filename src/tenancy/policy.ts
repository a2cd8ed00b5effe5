// A project's policy: where its deployments may go and what they may create. Stored in the
// `projects` table (admins write it by SQL or /api/admin/projects); a column left null, or a
// project without a row, takes the default below. The semantics follow Argo CD's AppProject
// (destinations, sourceRepos, namespaceResourceWhitelist/Blacklist, clusterResourceWhitelist) so
// that people who know one know the other. Pure: no I/O.
import { z } from 'zod';
import { admitted, hasWildcard, parseKindPattern } from './patterns.ts';
import { printableProblem, repoPathProblem } from './inputRules.ts';

export interface Policy {
  readonly project: string;
  /** Namespace globs (`!` denies). Wildcards never match a reserved namespace (below). */
  readonly namespaces: readonly string[];
  /** Ops repo name globs (`!` denies). */
  readonly sourceRepos: readonly string[];
  /** Manifest path globs inside the ops repo (`**` crosses `/`; `!` denies). */
  readonly manifestPaths: readonly string[];
  /** `group/Kind` globs of namespaced kinds; empty = every namespaced kind. */
  readonly namespaceResourceWhitelist: readonly string[];
  /** `group/Kind` globs of namespaced kinds refused even when whitelisted. */
  readonly namespaceResourceBlacklist: readonly string[];
  /** `group/Kind` globs of cluster-scoped kinds allowed; empty = none. */
  readonly clusterResourceWhitelist: readonly string[];
  /** Whether manifests may adopt existing objects (annotation `keelson.dev/adopt: "true"`). */
  readonly allowAdoption: boolean;
  /** Whether the policy comes from a `projects` row or is the default of a project without one. */
  readonly source: 'row' | 'default';
}

/**
 * Namespaces a wildcard never reaches: the cluster's own (`kube-system`, …) and `default`, which
 * other software shares. A policy may still name them literally. Without this, a project called
 * `kube` would own `kube-system` through its default `kube-*`.
 */
export function isReservedNamespace(namespace: string): boolean {
  return namespace === 'default' || namespace.startsWith('kube-');
}

export const DEFAULT_NAMESPACE_RESOURCE_BLACKLIST = ['rbac.authorization.k8s.io/*'] as const;

/**
 * The defaults, also the meaning of a null column: the project's own namespaces (`<project>-*`:
 * `<project>-<environment>` is the default namespace of a deployment; the bare `<project>` is
 * not included because shared namespaces often carry bare team or tool names), any registered
 * ops repo but only the project's own folder in it (`<project>` is the default manifest path),
 * every namespaced kind except RBAC (Role, RoleBinding: a project must not grant itself rights),
 * no cluster-scoped kinds (ClusterRole, webhooks, CRDs, Namespaces), no adoption.
 */
export function defaultPolicy(project: string): Policy {
  return {
    project,
    namespaces: [`${project}-*`],
    sourceRepos: ['*'],
    manifestPaths: [project, `${project}/**`],
    namespaceResourceWhitelist: [],
    namespaceResourceBlacklist: [...DEFAULT_NAMESPACE_RESOURCE_BLACKLIST],
    clusterResourceWhitelist: [],
    allowAdoption: false,
    source: 'default',
  };
}

// ---- the `projects` row --------------------------------------------------------------------

export const PROJECT_COLUMNS = [
  'namespaces',
  'source_repos',
  'manifest_paths',
  'namespace_resource_whitelist',
  'namespace_resource_blacklist',
  'cluster_resource_whitelist',
] as const;
export type PatternColumn = (typeof PROJECT_COLUMNS)[number];

export const ProjectRow = z.object({
  name: z.string(),
  description: z.string(),
  namespaces: z.array(z.string()).nullable(),
  source_repos: z.array(z.string()).nullable(),
  manifest_paths: z.array(z.string()).nullable(),
  namespace_resource_whitelist: z.array(z.string()).nullable(),
  namespace_resource_blacklist: z.array(z.string()).nullable(),
  cluster_resource_whitelist: z.array(z.string()).nullable(),
  allow_adoption: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ProjectRow = z.infer<typeof ProjectRow>;

export function resolvePolicy(project: string, row: ProjectRow | null): Policy {
  const fallback = defaultPolicy(project);
  if (!row) return fallback;
  return {
    project,
    namespaces: row.namespaces ?? fallback.namespaces,
    sourceRepos: row.source_repos ?? fallback.sourceRepos,
    manifestPaths: row.manifest_paths ?? fallback.manifestPaths,
    namespaceResourceWhitelist: row.namespace_resource_whitelist ?? fallback.namespaceResourceWhitelist,
    namespaceResourceBlacklist: row.namespace_resource_blacklist ?? fallback.namespaceResourceBlacklist,
    clusterResourceWhitelist: row.cluster_resource_whitelist ?? fallback.clusterResourceWhitelist,
    allowAdoption: row.allow_adoption,
    source: 'row',
  };
}

/** The policy as the API shows it (snake_case, like the table). */
export function policyJson(policy: Policy) {
  return {
    namespaces: [...policy.namespaces],
    source_repos: [...policy.sourceRepos],
    manifest_paths: [...policy.manifestPaths],
    namespace_resource_whitelist: [...policy.namespaceResourceWhitelist],
    namespace_resource_blacklist: [...policy.namespaceResourceBlacklist],
    cluster_resource_whitelist: [...policy.clusterResourceWhitelist],
    allow_adoption: policy.allowAdoption,
    source: policy.source,
  };
}

// ---- pattern syntax (the same rules as the table's CHECK constraints) ---------------------

export const MAX_PATTERNS = 100;

const NAME_GLOB = /^!?[-a-z0-9*?]{1,63}$/;
const KIND_GLOB = /^(core|[-a-z0-9.*?]{1,253})\/[A-Za-z0-9*?]{1,63}$/;

/** Why `pattern` is not a valid entry of `column`, or null. */
export function patternProblem(column: PatternColumn, pattern: string): string | null {
  switch (column) {
    case 'namespaces':
    case 'source_repos':
      return NAME_GLOB.test(pattern) ? null : 'expected a name pattern: lowercase letters, digits, "-", the wildcards * and ?, and an optional leading ! to deny';
    case 'manifest_paths': {
      const glob = pattern.startsWith('!') ? pattern.slice(1) : pattern;
      const problem = repoPathProblem(glob);
      return problem ? `expected a path pattern inside the ops repo such as shop or shop/** (${problem})` : null;
    }
    default:
      return KIND_GLOB.test(pattern) && parseKindPattern(pattern)
        ? null
        : 'expected group/Kind such as apps/Deployment, core/ConfigMap or rbac.authorization.k8s.io/* (the core API group is written core)';
  }
}

export function descriptionProblem(text: string): string | null {
  if (text.length > 1000) return 'at most 1000 characters';
  return printableProblem(text.replace(/\n/g, ' '));
}

// ---- placement: namespace, ops repo, manifest path ----------------------------------------

export type PlacementField = 'namespace' | 'ops_repo' | 'manifest_path';

export interface PlacementViolation {
  /** The deployments column (and API body field) that selected it. */
  readonly field: PlacementField;
  /** The policy column whose patterns refused it. */
  readonly rule: 'namespaces' | 'source_repos' | 'manifest_paths';
  readonly message: string;
}

const list = (patterns: readonly string[]) => (patterns.length === 0 ? '(none)' : patterns.join(', '));

export function namespaceAllowed(policy: Policy, namespace: string): boolean {
  return admitted(policy.namespaces, namespace, (ns) => !isReservedNamespace(ns));
}

export function namespaceRefusal(policy: Policy, namespace: string): string {
  const reserved = isReservedNamespace(namespace) && policy.namespaces.some((p) => !p.startsWith('!') && hasWildcard(p));
  return (
    `project ${policy.project} may deploy only into namespaces matching ${list(policy.namespaces)}` +
    (reserved ? ` (a wildcard never matches ${namespace}; an admin must name it literally)` : '')
  );
}

/**
 * Where a deployment row points: its resolved namespace, its ops repo's name (null: the built-in
 * template) and manifest path (null: the project name). The manifest path only matters with an
 * ops repo, but a stored one is checked anyway: an ops repo may be set later by SQL.
 */
export function checkPlacement(
  policy: Policy,
  target: { namespace: string; opsRepo: string | null; manifestPath: string | null },
): PlacementViolation[] {
  const violations: PlacementViolation[] = [];
  if (!namespaceAllowed(policy, target.namespace)) {
    violations.push({ field: 'namespace', rule: 'namespaces', message: `Namespace ${target.namespace} is outside the policy: ${namespaceRefusal(policy, target.namespace)}.` });
  }
  if (target.opsRepo !== null && !admitted(policy.sourceRepos, target.opsRepo)) {
    violations.push({
      field: 'ops_repo',
      rule: 'source_repos',
      message: `Ops repo ${target.opsRepo} is outside the policy: project ${policy.project} may use only ops repos matching ${list(policy.sourceRepos)}.`,
    });
  }
  const manifestPath = target.manifestPath ?? policy.project;
  if ((target.opsRepo !== null || target.manifestPath !== null) && !admitted(policy.manifestPaths, manifestPath)) {
    violations.push({
      field: 'manifest_path',
      rule: 'manifest_paths',
      message: `Manifest path ${manifestPath} is outside the policy: project ${policy.project} may render only manifest paths matching ${list(policy.manifestPaths)}.`,
    });
  }
  return violations;
}
