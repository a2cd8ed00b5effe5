// createRenderer(limits): templates → Kubernetes objects, with the template code kept away from
// keelson. An ops repo render runs in a child process of its own (renderProcess.ts) under Node's
// permission model: it may read keelson's code and nothing else, start no process, and sees an
// empty environment; its heap is capped with --max-old-space-size. The main process reads the
// repo's files for it (repoFiles.ts) and waits for nothing but messages, so a template that
// loops, allocates or prints without end costs the render process, never the event loop that
// keeps leases and serves the API. A render process is killed at the timeout, when it dies or is
// cancelled; after a render it reported (objects or a refusal) it may serve the same ops repo
// again (up to 100 renders, 60 s idle), never another repo. Starting one costs ~0.7 s of CPU (Node, type stripping, nunjucks, yaml, a warm-up
// render), so one spare is kept started ahead of need, from the renderer's creation on.
//
// Why a process and not a worker thread: a worker's resourceLimits do not bound memory against a
// hostile template. One large allocation past the limit (a flattened 200 MB string is three lines
// of template) aborts the whole keelson process with "FATAL ERROR: Reached heap limit"
// (nodejs/node#47224), and --max-old-space-size in NODE_OPTIONS silently overrides the worker's
// limit (nodejs/node#43991). A process that dies alone is a render error; a thread that dies
// takes every deployment of this keelson with it, again on every restart.
//
// The built-in template (no ops repo) runs no template code and stays in-process.
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { KeelsonError, TerminalError, TransientError } from '../errors.ts';
import type { KubeObject } from '../kube/types.ts';
import { Semaphore } from '../runtime/semaphore.ts';
import { renderBuiltin } from './builtinTemplate.ts';
import { encodeFrame, FrameDecoder, REPLY_FD, REQUEST_FD } from './frames.ts';
import { labelObject } from './labels.ts';
import { formatBytes } from '../bytes.ts';
import type { ChannelFrame, ChildMessage, JobMessage } from './renderProcess.ts';
import type { SerializedError, TemplateJob } from './renderTemplates.ts';
import { openRepoFiles, type RepoFiles } from './repoFiles.ts';
import { displayPath } from './safePath.ts';

export type { KubeObject };

const MiB = 1024 * 1024;

export interface RenderLimits {
  /** Wall-clock time of one render in its render process (KEELSON_RENDER_TIMEOUT). */
  readonly timeoutMs: number;
  /** Old-generation heap of each render process (KEELSON_RENDER_MAX_HEAP). */
  readonly maxHeapBytes: number;
  /** Objects one render may produce (KEELSON_RENDER_MAX_OBJECTS). */
  readonly maxObjects: number;
  /** Rendered output, and template text read, per render (KEELSON_RENDER_MAX_BYTES). */
  readonly maxBytes: number;
}

/**
 * The renderers a deployment can use; the row chooses (an ops repo or none). GET
 * /api/capabilities lists them from here.
 */
export const RENDERERS = [
  { name: 'builtin', description: 'A Deployment and a Service from the image and values_override, for rows without an ops repo.' },
  { name: 'nunjucks', description: 'Nunjucks templates and values.yaml of the ops repo folder (manifest_path), rendered in a confined process.' },
] as const;

export const DEFAULT_RENDER_LIMITS: RenderLimits = { timeoutMs: 10_000, maxHeapBytes: 128 * MiB, maxObjects: 1_000, maxBytes: 10 * MiB };

export interface RenderInput {
  /** A read-only tree of the commit to render (src/source/), or null → built-in template. */
  readonly root: string | null;
  /**
   * Which render processes may serve this render: one that rendered the same key may be reused
   * (default: `root`). A tree per commit has its own root; the key names the ops repo instead.
   */
  readonly processKey?: string;
  /** ops_repos.path ('' = repo root). */
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

export interface Renderer {
  render(input: RenderInput, options?: { signal?: AbortSignal }): Promise<RenderResult>;
  /** Render processes started so far (the spare included), and renders served by a reused one. */
  stats(): { processesStarted: number; rendersInReusedProcess: number };
  /** Kills every render process; renders in flight fail. */
  close(): Promise<void>;
}

export interface RendererOptions {
  /** Renders running at once (each a process with its own heap); default: the number of CPUs. */
  readonly concurrency?: number;
}

const ENTRY = fileURLToPath(new URL('./renderProcess.ts', import.meta.url));
const SOURCE_DIR = fileURLToPath(new URL('../', import.meta.url));
const PACKAGE_JSON = path.join(path.dirname(SOURCE_DIR), 'package.json');
/** The node_modules that holds nunjucks (and yaml): keelson's dependencies, no secrets. */
const MODULES_DIR = path.dirname(path.dirname(createRequire(import.meta.url).resolve('nunjucks/package.json')));
/** The same folder by the path imports use: it differs from MODULES_DIR when node_modules is a symlink. */
const PROJECT_MODULES_DIR = path.join(path.dirname(SOURCE_DIR), 'node_modules');

/**
 * How a render process is started: no environment (no DATABASE_URL, no KUBECONFIG, and no
 * NODE_OPTIONS to override its heap), and Node flags for what it may read and its heap.
 * `extraReadable` is for tests that start a probe in the same confinement.
 */
export function renderProcessOptions(limits: Pick<RenderLimits, 'maxHeapBytes'>, extraReadable: readonly string[] = []): { env: NodeJS.ProcessEnv; execArgv: string[] } {
  return {
    env: {},
    execArgv: [
      '--permission',
      ...[...new Set([SOURCE_DIR, MODULES_DIR, PROJECT_MODULES_DIR, PACKAGE_JSON, ...extraReadable])].map((dir) => `--allow-fs-read=${dir}`),
      `--max-old-space-size=${Math.max(16, Math.round(limits.maxHeapBytes / MiB))}`,
    ],
  };
}

interface RenderProcess {
  readonly child: ChildProcess;
  /** Resolves once it has loaded and locked itself down. */
  readonly ready: Promise<void>;
  /** The last few KiB it wrote to stderr: V8's out-of-memory report lands there. */
  stderr(): string;
  /** Renders it completed (all of one ops repo). */
  renders: number;
}

/** Whether the child (its process handle, IPC channel and pipes) keeps keelson's event loop alive. */
function hold(child: ChildProcess, keepAlive: boolean): void {
  const handles: ({ ref(): unknown; unref(): unknown } | null | undefined)[] = [child, child.channel, ...(child.stdio as unknown as ({ ref(): unknown; unref(): unknown } | null)[])];
  for (const handle of handles) {
    if (handle && typeof handle.ref === 'function') {
      if (keepAlive) handle.ref();
      else handle.unref();
    }
  }
}

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function fromRenderProcess(error: SerializedError): KeelsonError {
  return error.kind === 'transient' ? new TransientError(error.message, { code: error.code }) : new TerminalError(error.message, { code: error.code });
}

const STDERR_TAIL = 4096;

/** The line of a Node crash report that says what went wrong. */
function firstError(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim());
  return lines.find((line) => /^[A-Za-z]*Error\b|^FATAL/.test(line)) ?? lines.filter((line) => line !== '').at(-1) ?? 'no output';
}

/** A render process that rendered an ops repo may render that repo again, this many times… */
const RENDERS_PER_PROCESS = 100;
/** …unless it has been idle this long. */
const IDLE_MS = 60_000;

export function createRenderer(limits: RenderLimits = DEFAULT_RENDER_LIMITS, options: RendererOptions = {}): Renderer {
  const slots = new Semaphore(options.concurrency ?? Math.max(1, os.availableParallelism()));
  const running = new Set<RenderProcess>();
  /** At most one idle process per ops repo checkout, kept for that repo only. */
  const idle = new Map<string, { process: RenderProcess; timer: NodeJS.Timeout }>();
  let spare: RenderProcess | null = null;
  let closed = false;
  const stats = { processesStarted: 0, rendersInReusedProcess: 0 };
  /** Errors the render process reported itself (it is still sound), as opposed to ones about it. */
  const reported = new WeakSet<KeelsonError>();

  function start(): RenderProcess {
    stats.processesStarted++;
    const child = fork(ENTRY, [], {
      ...renderProcessOptions(limits),
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc', 'pipe', 'pipe'],
    });
    let tail = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      tail = (tail + text).slice(-STDERR_TAIL);
    });
    // a process waiting for work must not keep keelson alive
    hold(child, false);
    const ready = new Promise<void>((resolve, reject) => {
      child.once('message', (message: ChildMessage) => (message.type === 'ready' ? resolve() : reject(new Error(`it said ${message.type} before ready`))));
      child.once('error', reject);
      // 'close', not 'exit': it comes after stderr is read to the end, crash report included
      child.once('close', (code, signal) => reject(new Error(`it exited (${signal ?? `code ${code}`}) while starting: ${firstError(tail)}`)));
    });
    ready.catch(() => undefined);
    const renderProcess: RenderProcess = { child, ready, stderr: () => tail, renders: 0 };
    // one that died while waiting (killed from outside) must not be handed a render
    child.once('close', () => {
      if (spare === renderProcess) spare = null;
      for (const [repo, entry] of idle) {
        if (entry.process === renderProcess) {
          clearTimeout(entry.timer);
          idle.delete(repo);
        }
      }
    });
    return renderProcess;
  }

  function ensureSpare(): void {
    if (!closed && !spare) spare = start();
  }

  function take(repo: string): RenderProcess {
    const parked = idle.get(repo);
    if (parked) {
      idle.delete(repo);
      clearTimeout(parked.timer);
      stats.rendersInReusedProcess++;
      hold(parked.process.child, true);
      return parked.process;
    }
    const taken = spare ?? start();
    spare = null;
    hold(taken.child, true);
    // the next spare starts once this one is up, so the two do not compete for the CPU
    void taken.ready.then(ensureSpare, () => undefined);
    return taken;
  }

  /**
   * After a render it reported (rendered or refused), the process may serve its repo's next
   * render: the template author who could affect it is the same. Never another repo's: a process
   * that ran one repo's templates is never handed another repo's values or files.
   */
  function park(repo: string, renderProcess: RenderProcess): void {
    if (closed || renderProcess.renders >= RENDERS_PER_PROCESS || idle.has(repo)) {
      renderProcess.child.kill('SIGKILL');
      return;
    }
    hold(renderProcess.child, false);
    const timer = setTimeout(() => {
      idle.delete(repo);
      renderProcess.child.kill('SIGKILL');
    }, IDLE_MS);
    timer.unref();
    idle.set(repo, { process: renderProcess, timer });
  }

  async function runJob(repo: string, job: TemplateJob, files: RepoFiles, signal: AbortSignal | undefined): Promise<RenderResult> {
    let release: () => void;
    try {
      release = await slots.acquire(signal);
    } catch (error) {
      throw aborted(error);
    }
    try {
      const renderProcess = take(repo);
      running.add(renderProcess);
      try {
        await untilAborted(renderProcess.ready, signal);
      } catch (error) {
        running.delete(renderProcess);
        renderProcess.child.kill('SIGKILL');
        if (signal?.aborted) throw aborted(signal.reason);
        throw new TransientError(`A render process could not start (${(error as Error).message}); the render is retried.`, { code: 'render_process_failed', cause: error });
      }
      try {
        const result = await runIn(renderProcess, job, files, signal);
        renderProcess.renders++;
        park(repo, renderProcess);
        return result;
      } catch (error) {
        // A render the process reported as refused (a template error, a forbidden lookup, a cap)
        // leaves it sound; one it could not report (timeout, crash, out of memory, abort) does not.
        if (error instanceof KeelsonError && reported.has(error)) {
          renderProcess.renders++;
          park(repo, renderProcess);
        } else {
          renderProcess.child.kill('SIGKILL');
        }
        throw error;
      } finally {
        running.delete(renderProcess);
      }
    } finally {
      release();
    }
  }

  function runIn(renderProcess: RenderProcess, job: TemplateJob, files: RepoFiles, signal: AbortSignal | undefined): Promise<RenderResult> {
    const { child } = renderProcess;
    const stdio = child.stdio as unknown as (Readable | Writable | null)[];
    const requests = stdio[REQUEST_FD] as Readable;
    const replies = stdio[REPLY_FD] as Writable;
    const decoder = new FrameDecoder(64 * 1024);
    let current = job.files[0]?.rel ?? '';
    const shownFile = () => displayPath(files.root, current);

    return new Promise<RenderResult>((resolve, reject) => {
      let settled = false;
      const finish = (error: unknown, result?: RenderResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        requests.off('data', onData);
        child.off('message', onMessage);
        child.off('error', onError);
        child.off('close', onClose);
        if (error) reject(error);
        else resolve(result as RenderResult);
      };
      const onAbort = () => finish(aborted(signal?.reason));
      const timer = setTimeout(
        () =>
          finish(
            new TerminalError(
              `Rendering did not finish within ${formatDuration(limits.timeoutMs)} (KEELSON_RENDER_TIMEOUT); it was stopped in ${shownFile()}. Make the templates do less work (a loop that never ends?), or raise the limit.`,
              { code: 'render_timeout' },
            ),
          ),
        limits.timeoutMs,
      );
      const onData = (chunk: Buffer) => {
        let frames: unknown[];
        try {
          frames = decoder.push(chunk);
        } catch (error) {
          finish(new TerminalError(`The render process sent a malformed request (${(error as Error).message}) in ${shownFile()}. Fix the template in the ops repo.`, { code: 'render_process_failed' }));
          return;
        }
        for (const frame of frames as ChannelFrame[]) {
          if (frame.kind === 'progress') {
            current = frame.rel;
            continue;
          }
          void files.serve(frame.name).then((reply) => {
            if (!settled) replies.write(encodeFrame(reply));
          });
        }
      };
      const onMessage = (message: ChildMessage) => {
        if (message.type === 'done') finish(null, message.result);
        else if (message.type === 'failed') {
          const error = fromRenderProcess(message.error);
          reported.add(error);
          finish(error);
        }
      };
      const onError = (error: Error) =>
        finish(new TransientError(`The render process could not be reached (${error.message}); the render is retried.`, { code: 'render_process_failed', cause: error }));
      const onClose = (code: number | null, exitSignal: NodeJS.Signals | null) => {
        if (/heap out of memory|Reached heap limit/.test(renderProcess.stderr())) {
          finish(
            new TerminalError(
              `Rendering ran out of its memory limit of ${formatBytes(limits.maxHeapBytes)} (KEELSON_RENDER_MAX_HEAP) in ${shownFile()}. Make the templates build smaller lists and strings, or raise the limit.`,
              { code: 'render_out_of_memory' },
            ),
          );
        } else {
          finish(
            new TerminalError(`The render process ended (${exitSignal ?? `code ${code}`}) in ${shownFile()} before it reported a result. Fix the template in the ops repo.`, {
              code: 'render_process_failed',
            }),
          );
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      requests.on('data', onData);
      child.on('message', onMessage);
      child.on('error', onError);
      child.on('close', onClose);
      // aborted while the process was being handed over: no listener would hear it now
      if (signal?.aborted) onAbort();
      else child.send({ type: 'job', job } satisfies JobMessage);
    });
  }

  ensureSpare();

  return {
    async render(input, renderOptions = {}) {
      if (closed) throw new TerminalError('The renderer is closed; keelson is shutting down.', { code: 'render_closed' });
      if (input.root === null) {
        const { objects, values } = renderBuiltin(input);
        return { objects: objects.map((object) => labelObject(object, input.deploymentId)), files: [], values };
      }
      const files = await openRepoFiles({
        checkout: input.root,
        basePath: input.basePath,
        manifestPath: input.manifestPath ?? input.project,
        environment: input.environment,
        maxBytes: limits.maxBytes,
      });
      const job: TemplateJob = {
        base: files.root.base,
        files: files.files,
        valueFiles: files.valueFiles,
        valuesOverride: input.valuesOverride,
        variables: {
          image_ref: input.imageRef,
          project: input.project,
          environment: input.environment,
          namespace: input.namespace,
          deployment_id: input.deploymentId,
        },
        maxObjects: limits.maxObjects,
        maxBytes: limits.maxBytes,
        timeoutMs: limits.timeoutMs,
      };
      return await runJob(input.processKey ?? input.root, job, files, renderOptions.signal);
    },

    stats: () => ({ ...stats }),

    async close() {
      closed = true;
      const processes = [...running, ...[...idle.values()].map((entry) => entry.process), ...(spare ? [spare] : [])];
      for (const entry of idle.values()) clearTimeout(entry.timer);
      idle.clear();
      spare = null;
      await Promise.all(
        processes.map(
          ({ child }) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              hold(child, true);
              child.once('close', () => resolve());
              child.kill('SIGKILL');
            }),
        ),
      );
    },
  };
}

/** `promise`, or a rejection as soon as `signal` aborts. */
async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return await promise;
  signal.throwIfAborted();
  let onAbort = () => undefined as void;
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => signal.addEventListener('abort', (onAbort = () => reject(signal.reason)), { once: true }))]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function aborted(reason: unknown): TransientError {
  return new TransientError('The render was cancelled by its caller; the next attempt renders again.', { code: 'render_aborted', cause: reason });
}
