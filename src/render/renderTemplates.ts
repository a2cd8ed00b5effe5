// Inside the render process: an ops repo's templates (already read by the main process, includes
// fetched on demand through `readTemplate`) → labelled Kubernetes objects. Everything CPU-bound
// about rendering happens here: values files are parsed, templates run in the sandbox, output is
// parsed and the printed values filled in, all within the render's caps.
import path from 'node:path';
import type { ILoader, LoaderSource } from 'nunjucks';
import { KeelsonError, TerminalError } from '../errors.ts';
import type { KubeObject } from '../kube/types.ts';
import { clipped, FailureLog, quoted, RenderFailure } from './failure.ts';
import { labelObject } from './labels.ts';
import { mergeValues } from './mergeValues.ts';
import { OutputSlots, outputTooLarge } from './outputSlots.ts';
import { parseManifests, parseValues } from './parseManifests.ts';
import { createSandboxEnvironment } from './sandbox.ts';
import { templateError } from './templateErrors.ts';

export interface TemplateFile {
  /** Path relative to the ops repo root, posix: nunjucks' name for the template. */
  readonly rel: string;
  readonly src: string;
}

export interface TemplateJob {
  /** ops_repos.path, normalised ('' = checkout root): prefix of every name shown to users. */
  readonly base: string;
  /** The manifests to render, in order. */
  readonly files: readonly TemplateFile[];
  /** Values files from lowest to highest priority; a missing one has src null. */
  readonly valueFiles: readonly { readonly rel: string; readonly src: string | null }[];
  readonly valuesOverride: Record<string, unknown>;
  readonly variables: {
    readonly image_ref: string;
    readonly project: string;
    readonly environment: string;
    readonly namespace: string;
    readonly deployment_id: string;
  };
  readonly maxObjects: number;
  readonly maxBytes: number;
  /** The render's time limit; the render stops itself a second after it (the main process kills it at the limit). */
  readonly timeoutMs: number;
}

export interface TemplateResult {
  readonly objects: KubeObject[];
  readonly files: string[];
  readonly values: Record<string, unknown>;
}

/** What the main process answers to a request for a template by name. */
export type TemplateReply =
  | { readonly kind: 'file'; readonly rel: string; readonly src: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'refused'; readonly code: string; readonly message: string };

/**
 * Serves templates from the job's files and, for includes, from the main process. Relative names
 * (`./x`, `../x`) resolve against the including file and stay relative: an escape shows up as a
 * leading `..`, which the main process refuses.
 */
class ProcessLoader implements ILoader {
  readonly sources = new Map<string, string>();
  private readonly readTemplate: (name: string) => TemplateReply;
  private readonly failures: FailureLog;

  constructor(files: readonly TemplateFile[], readTemplate: (name: string) => TemplateReply, failures: FailureLog) {
    for (const file of files) this.sources.set(file.rel, file.src);
    this.readTemplate = readTemplate;
    this.failures = failures;
  }

  isRelative(name: string): boolean {
    return name.startsWith('./') || name.startsWith('../');
  }

  resolve(from: string, to: string): string {
    return path.posix.normalize(path.posix.join(path.posix.dirname(from), to));
  }

  getSource(name: string): LoaderSource {
    const known = this.sources.get(name);
    if (known !== undefined) return { src: known, path: name, noCache: true };
    const reply = this.readTemplate(name);
    // A missing template is nunjucks' business: `{% include "x" ignore missing %}` must work, and
    // otherwise nunjucks reports "template not found" with the including file's location.
    if (reply.kind === 'missing') return null as unknown as LoaderSource;
    if (reply.kind === 'refused') {
      const error = new TerminalError(reply.message, { code: reply.code });
      this.failures.first ??= error;
      throw error;
    }
    // by the name asked for (later includes ask it again) and the path nunjucks reports errors by
    this.sources.set(name, reply.src);
    this.sources.set(reply.rel, reply.src);
    return { src: reply.src, path: reply.rel, noCache: true };
  }
}

function display(base: string, rel: string): string {
  return path.posix.join(base, rel) || '.';
}

/** A RenderFailure raised outside nunjucks (while filling values) becomes a TerminalError naming the file. */
function asTerminal(error: unknown, file: string): unknown {
  if (!(error instanceof RenderFailure)) return error;
  return new TerminalError(`Rendering stopped at ${file}: ${error.message}. Make the templates render less, or raise KEELSON_RENDER_MAX_BYTES.`, { code: error.code });
}

export interface TemplateIo {
  /** Asks the main process for a template by name (blocks until it answers). */
  readonly readTemplate: (name: string) => TemplateReply;
  /** Tells the main process which manifest is being rendered. */
  readonly progress: (rel: string) => void;
}

export function renderTemplates(job: TemplateJob, io: TemplateIo): TemplateResult {
  const values = mergeValues(...job.valueFiles.map((file) => (file.src === null ? {} : parseValues(file.src, display(job.base, file.rel)))), job.valuesOverride);
  const failures = new FailureLog();
  const slots = new OutputSlots(failures, job.maxBytes);
  const loader = new ProcessLoader(job.files, io.readTemplate, failures);
  const env = createSandboxEnvironment({ loader, slots, failures, maxChars: job.maxBytes, deadline: Date.now() + job.timeoutMs + 1_000 });
  const context = { ...job.variables, values };

  const objects: KubeObject[] = [];
  const seen = new Map<string, string>();
  let bytes = 0;
  for (const file of job.files) {
    const shown = display(job.base, file.rel);
    io.progress(file.rel);
    let text: string;
    try {
      text = env.render(file.rel, context);
    } catch (error) {
      throw templateError(error, {
        failure: failures.first,
        file: shown,
        display: (name) => display(job.base, name),
        sourceOf: (name) => loader.sources.get(name),
      });
    }
    bytes += Buffer.byteLength(text);
    if (bytes > job.maxBytes) throw asTerminal(outputTooLarge(job.maxBytes), shown);
    let parsed;
    try {
      parsed = parseManifests(text, shown, {
        fill: (document, where) => slots.fill(document, where),
        objects: { remaining: job.maxObjects - objects.length, limit: job.maxObjects },
      });
    } catch (error) {
      throw asTerminal(error, shown);
    }
    for (const { object, line } of parsed) {
      // The API group, not the version: apps/v1 and apps/v1beta1 name the same object.
      const group = object.apiVersion.includes('/') ? object.apiVersion.slice(0, object.apiVersion.indexOf('/')) : '';
      const key = [group, object.kind, object.metadata.namespace ?? '', object.metadata.name].join('/');
      const previous = seen.get(key);
      if (previous) {
        throw new TerminalError(
          `${shown}:${line}: ${object.kind} ${quoted(object.metadata.name)} is defined twice (first at ${previous}); the second would silently overwrite the first. Remove one of them.`,
          { code: 'render_invalid_object' },
        );
      }
      seen.set(key, `${shown}:${line}`);
      objects.push(labelObject(object, job.variables.deployment_id));
    }
  }
  if (bytes + slots.valueBytes() > job.maxBytes) throw asTerminal(outputTooLarge(job.maxBytes), job.files.map((f) => display(job.base, f.rel)).join(', '));
  if (objects.length === 0) {
    // Applying nothing would look like "delete everything" to a pruning applier.
    throw new TerminalError(`Rendering ${job.files.map((f) => display(job.base, f.rel)).join(', ')} produced no Kubernetes objects. Add manifests, or stop the deployment instead.`, {
      code: 'render_invalid_object',
    });
  }
  return { objects, files: job.files.map((file) => display(job.base, file.rel)), values };
}

/** How an error crosses from the render process to the main process (classes do not survive the trip). */
export interface SerializedError {
  readonly kind: 'terminal' | 'transient';
  readonly code: string;
  readonly message: string;
}

const MESSAGE_LIMIT = 2_000;

export function serializeError(error: unknown): SerializedError {
  const clip = (message: string) => clipped(message, MESSAGE_LIMIT);
  if (error instanceof KeelsonError) return { kind: error.kind, code: error.code, message: clip(error.message) };
  if (error instanceof RangeError && /Invalid (string|array) length/.test(error.message)) {
    return { kind: 'terminal', code: 'render_too_large', message: `Rendering produced a string or list larger than JavaScript allows (${error.message}). Make the templates render less.` };
  }
  const message = clip(error instanceof Error ? error.message : String(error));
  return { kind: 'terminal', code: 'render_template', message: `Rendering failed: ${message}. Fix the template in the ops repo.` };
}
