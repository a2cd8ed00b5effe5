// The main process's side of rendering: it alone touches the checkout. It lists the manifests,
// reads them and the values files, and answers the render process's requests for included
// templates, each name resolved inside the ops repo root (safePath.ts: `..`, absolute paths,
// symlinks out and `.git` are refused). Reads are asynchronous, so the main event loop never
// waits on them, and everything read for one render counts against the output cap: a repo cannot
// make the render process hold more template text than it may produce.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, KeelsonError, TerminalError } from '../errors.ts';
import { formatBytes } from '../bytes.ts';
import type { TemplateFile, TemplateReply } from './renderTemplates.ts';
import { displayPath, openRepoRoot, resolveInRoot, type RepoRoot } from './safePath.ts';

const MANIFEST_FILE = /\.(ya?ml|njk)$/;
const VALUES_FILE = /^values.*\.ya?ml$/;

export interface RepoFiles {
  readonly root: RepoRoot;
  readonly files: TemplateFile[];
  readonly valueFiles: { rel: string; src: string | null }[];
  /** Answers the render process's request for a template by name. */
  serve(name: string): Promise<TemplateReply>;
}

/** Bytes one render may still read; shared by the job's files and every include. */
class ReadBudget {
  private remaining: number;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
    this.remaining = limit;
  }

  take(size: number, shown: string): void {
    this.remaining -= size;
    if (this.remaining < 0) {
      throw new TerminalError(
        `Reading ${JSON.stringify(shown)} takes the templates and values files of this render over ${formatBytes(this.limit)}, the output limit (KEELSON_RENDER_MAX_BYTES). Keep templates smaller, or raise the limit.`,
        { code: 'render_too_large' },
      );
    }
  }
}

async function readConfined(root: RepoRoot, abs: string, rel: string, budget: ReadBudget): Promise<string> {
  const info = await stat(abs);
  budget.take(info.size, displayPath(root, rel));
  return await readFile(abs, 'utf8');
}

/** Lists the templates to render: one file, or a directory's manifest files in name order. */
async function manifestFiles(root: RepoRoot, manifestPath: string): Promise<{ files: string[]; dir: string }> {
  const target = resolveInRoot(root, manifestPath, 'manifest path');
  if (!(await stat(target.abs)).isDirectory()) return { files: [target.rel], dir: path.posix.dirname(target.rel) };
  const names = (await readdir(target.abs))
    .filter((name) => MANIFEST_FILE.test(name) && !VALUES_FILE.test(name))
    // Code-unit order, not locale order: the same on every host. Use zero-padded prefixes.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: string[] = [];
  for (const name of names) {
    const file = resolveInRoot(root, path.posix.join(target.rel, name), 'manifest');
    if ((await stat(file.abs)).isFile()) files.push(file.rel);
  }
  if (files.length === 0) {
    throw new TerminalError(
      `The manifest directory ${JSON.stringify(displayPath(root, target.rel))} has no *.yaml, *.yml or *.njk manifests (values*.yaml files are not manifests). Add manifests or fix deployments.manifest_path.`,
      { code: 'render_path_missing' },
    );
  }
  return { files, dir: target.rel };
}

/** An optional values file: a missing one is null, an escaping one is refused. */
async function readValuesFile(root: RepoRoot, rel: string, budget: ReadBudget): Promise<string | null> {
  let file;
  try {
    file = resolveInRoot(root, rel, 'values file');
  } catch (error) {
    if (error instanceof KeelsonError && error.code === 'render_path_missing') return null;
    throw error;
  }
  if (!(await stat(file.abs)).isFile()) return null;
  return await readConfined(root, file.abs, file.rel, budget);
}

export async function openRepoFiles(input: { checkout: string; basePath: string; manifestPath: string; environment: string; maxBytes: number }): Promise<RepoFiles> {
  const root = openRepoRoot(input.checkout, input.basePath);
  const budget = new ReadBudget(input.maxBytes);
  const { files, dir } = await manifestFiles(root, input.manifestPath);
  const sources: TemplateFile[] = [];
  for (const rel of files) sources.push({ rel, src: await readConfined(root, resolveInRoot(root, rel, 'manifest').abs, rel, budget) });
  // values.yaml at the root < the manifest dir's values.yaml < values-<env>.yaml (< the row, in the render process)
  const valueNames = [...new Set(['values.yaml', path.posix.join(dir, 'values.yaml'), path.posix.join(dir, `values-${input.environment}.yaml`)])];
  const valueFiles: { rel: string; src: string | null }[] = [];
  for (const rel of valueNames) valueFiles.push({ rel, src: await readValuesFile(root, rel, budget) });

  const served = new Map<string, Promise<TemplateReply>>();
  const serveOnce = async (name: string): Promise<TemplateReply> => {
    try {
      const file = resolveInRoot(root, name, 'template');
      if (!(await stat(file.abs)).isFile()) return { kind: 'missing' };
      return { kind: 'file', rel: file.rel, src: await readConfined(root, file.abs, file.rel, budget) };
    } catch (error) {
      if (error instanceof KeelsonError && error.code === 'render_path_missing') return { kind: 'missing' };
      if (error instanceof KeelsonError) return { kind: 'refused', code: error.code, message: error.message };
      // the render process waits for an answer: every failure must become one
      return {
        kind: 'refused',
        code: 'render_path_missing',
        message: `The template ${JSON.stringify(name)} cannot be read: ${errorMessage(error)}. Check the ops repo checkout.`,
      };
    }
  };
  return {
    root,
    files: sources,
    valueFiles,
    serve: (name) => {
      let reply = served.get(name);
      if (!reply) {
        reply = serveOnce(name);
        served.set(name, reply);
      }
      return reply;
    },
  };
}
