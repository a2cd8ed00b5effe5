// Templates in an ops repo checkout → Kubernetes objects. Pure with respect to the cluster and
// the database: it only reads files under `<root>/<basePath>` (see safePath.ts).
//
// Hazard: nunjucks is not a sandbox. A template can reach JavaScript built-ins, so whoever can
// push to an ops repo can run code in the keelson process; treat ops repo write access like
// deploy access. What this module does guarantee is that file access stays inside the repo.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import nunjucks from 'nunjucks';
import { KeelsonError, TerminalError } from '../errors.ts';
import { renderBuiltin } from './builtinTemplate.ts';
import { mergeValues } from './mergeValues.ts';
import { parseManifests, parseValues, type KubeObject } from './parseManifests.ts';
import { RepoLoader } from './repoLoader.ts';
import { displayPath, openRepoRoot, resolveInRoot, type RepoRoot } from './safePath.ts';

export type { KubeObject } from './parseManifests.ts';

export interface RenderInput {
  /** SyncResult.dir, or null → built-in template. */
  readonly root: string | null;
  /** SyncResult.path ('' = repo root). */
  readonly basePath: string;
  /** deployments.manifest_path; null → project name. */
  readonly manifestPath: string | null;
  readonly imageRef: string;
  readonly project: string;
  readonly environment: string;
  readonly namespace: string;
  readonly deploymentId: string;
  readonly valuesOverride: Record<string, unknown>;
}

export interface RenderResult {
  readonly objects: KubeObject[];
  /** Repo-relative paths of the rendered files, in render order ([] for the built-in template). */
  readonly files: string[];
  /** The merged values the templates saw. */
  readonly values: Record<string, unknown>;
}

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const DEPLOYMENT_LABEL = 'keelson.dev/deployment';

const MANIFEST_FILE = /\.(ya?ml|njk)$/;
const VALUES_FILE = /^values.*\.ya?ml$/;

/**
 * Adds keelson's labels to each object's own metadata.labels. Never to pod templates or
 * selectors: a Deployment's selector is immutable, and a label added to the pod template would
 * roll every pod whenever the deployment id changed.
 */
function label(object: KubeObject, deploymentId: string): KubeObject {
  object.metadata.labels = { ...(object.metadata.labels ?? {}), [MANAGED_BY_LABEL]: 'keelson', [DEPLOYMENT_LABEL]: deploymentId };
  return object;
}

/** Lists the templates to render: one file, or a directory's manifest files in name order. */
function manifestFiles(root: RepoRoot, manifestPath: string): { files: string[]; dir: string } {
  const target = resolveInRoot(root, manifestPath, 'manifest path');
  const stat = statSync(target.abs);
  if (!stat.isDirectory()) return { files: [target.rel], dir: path.posix.dirname(target.rel) };
  const names = readdirSync(target.abs)
    .filter((name) => MANIFEST_FILE.test(name) && !VALUES_FILE.test(name))
    // Code-unit order, not locale order: the same on every host. Use zero-padded prefixes.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: string[] = [];
  for (const name of names) {
    const file = resolveInRoot(root, path.posix.join(target.rel, name), 'manifest');
    if (statSync(file.abs).isFile()) files.push(file.rel);
  }
  if (files.length === 0) {
    throw new TerminalError(
      `The manifest directory ${JSON.stringify(displayPath(root, target.rel))} has no *.yaml, *.yml or *.njk manifests (values*.yaml files are not manifests). Add manifests or fix deployments.manifest_path.`,
      { code: 'render_path_missing' },
    );
  }
  return { files, dir: target.rel };
}

/** Reads an optional values file; a missing one is empty, an escaping one is refused. */
function readValues(root: RepoRoot, rel: string): Record<string, unknown> {
  let file;
  try {
    file = resolveInRoot(root, rel, 'values file');
  } catch (error) {
    if (error instanceof KeelsonError && error.code === 'render_path_missing') return {};
    throw error;
  }
  if (!statSync(file.abs).isFile()) return {};
  return parseValues(readFileSync(file.abs, 'utf8'), displayPath(root, file.rel));
}

const NUNJUCKS_LOCATION = /^\s*(?:Template render error: )?\(([^()\n]*)\)(?: \[Line (\d+)(?:, Column (\d+))?\])?/gm;

/**
 * The `{{ … }}` output expression of `rel` at a 1-based line and column as nunjucks reports them
 * (the column points into or at the start of the tag); the only one on the line otherwise.
 * Best effort: any trouble reading the source yields undefined, never another error.
 */
function outputExpressionAt(root: RepoRoot, rel: string, line: number, column: number | undefined): string | undefined {
  try {
    const source = readFileSync(resolveInRoot(root, rel, 'template').abs, 'utf8').split('\n')[line - 1];
    if (source === undefined) return undefined;
    const tags = [...source.matchAll(/\{\{-?\s*(.*?)\s*-?\}\}/g)].map((m) => ({ start: m.index, end: m.index + m[0].length, text: m[0] }));
    if (column !== undefined) {
      const at = column - 1;
      const hit = tags.find((tag) => tag.start <= at && at < tag.end) ?? tags.find((tag) => tag.start >= at - 2 && tag.start <= at + 2);
      if (hit) return hit.text;
    }
    return tags.length === 1 ? tags[0]?.text : undefined;
  } catch {
    return undefined;
  }
}

/** nunjucks errors read "(file) [Line 3, Column 5]\n  message", nested once per include. */
function templateError(error: unknown, root: RepoRoot, fallbackFile: string): TerminalError {
  const message = error instanceof Error ? error.message : String(error);
  let file = fallbackFile;
  let rel: string | undefined;
  let line: string | undefined;
  let column: string | undefined;
  for (const match of message.matchAll(NUNJUCKS_LOCATION)) {
    if (match[1] && match[1] !== 'unknown path') {
      file = displayPath(root, match[1]);
      rel = match[1];
    }
    if (match[2]) {
      line = match[2];
      column = match[3];
    }
  }
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  let reason = (lines.at(-1) ?? message).replace(/^Template render error: /, '').replace(/^Error: /, '');
  if (/null or undefined value/.test(reason)) {
    // nunjucks does not say which variable: name the expression at the reported position
    const expression = rel && line ? outputExpressionAt(root, rel, Number(line), column ? Number(column) : undefined) : undefined;
    reason +=
      (expression ? ` in \`${expression}\`` : '') +
      ' (a variable used here is undefined; the variables are image_ref, project, environment, namespace, deployment_id and values; define the value in values.yaml or deployments.values_override, or use `| default(...)`)';
  }
  const where = line ? `${file}:${line}${column ? `:${column}` : ''}` : file;
  return new TerminalError(`Template error at ${where}: ${reason}. Fix the template in the ops repo.`, { code: 'render_template' });
}

export async function renderManifests(input: RenderInput): Promise<RenderResult> {
  if (input.root === null) {
    const { objects, values } = renderBuiltin(input);
    return { objects: objects.map((object) => label(object, input.deploymentId)), files: [], values };
  }

  const root = openRepoRoot(input.root, input.basePath);
  const manifestPath = input.manifestPath ?? input.project;
  const { files, dir } = manifestFiles(root, manifestPath);

  // values.yaml at the root < the manifest dir's values.yaml < values-<env>.yaml < the row.
  const valueFiles = [...new Set(['values.yaml', path.posix.join(dir, 'values.yaml'), path.posix.join(dir, `values-${input.environment}.yaml`)])];
  const values = mergeValues(...valueFiles.map((file) => readValues(root, file)), input.valuesOverride);

  const loader = new RepoLoader(root);
  const env = new nunjucks.Environment(loader, { throwOnUndefined: true, autoescape: false });
  const context = {
    image_ref: input.imageRef,
    project: input.project,
    environment: input.environment,
    namespace: input.namespace,
    deployment_id: input.deploymentId,
    values,
  };

  const objects: KubeObject[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    const shown = displayPath(root, file);
    let text: string;
    try {
      text = env.render(file, context);
    } catch (error) {
      if (loader.violation) throw loader.violation;
      throw templateError(error, root, shown);
    }
    for (const { object, line } of parseManifests(text, shown)) {
      // The API group, not the version: apps/v1 and apps/v1beta1 name the same object.
      const group = object.apiVersion.includes('/') ? object.apiVersion.slice(0, object.apiVersion.indexOf('/')) : '';
      const key = [group, object.kind, object.metadata.namespace ?? '', object.metadata.name].join('/');
      const previous = seen.get(key);
      if (previous) {
        throw new TerminalError(
          `${shown}:${line}: ${object.kind} ${JSON.stringify(object.metadata.name)} is defined twice (first at ${previous}); the second would silently overwrite the first. Remove one of them.`,
          { code: 'render_invalid_object' },
        );
      }
      seen.set(key, `${shown}:${line}`);
      objects.push(label(object, input.deploymentId));
    }
  }
  if (objects.length === 0) {
    // Applying nothing would look like "delete everything" to a pruning applier.
    throw new TerminalError(`Rendering ${files.map((f) => displayPath(root, f)).join(', ')} produced no Kubernetes objects. Add manifests, or stop the deployment instead.`, {
      code: 'render_invalid_object',
    });
  }
  return { objects, files: files.map((file) => displayPath(root, file)), values };
}
