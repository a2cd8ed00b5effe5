// `keelson wait <project> <env>`: a pipeline that changed a row (by SQL or the API) follows the
// action of that generation until it ends. It polls GET …/actions/:generation, woken early by the
// deployment's event stream, and prints each new phase and state. Exit codes are the contract:
// 0 succeeded, 1 failed or superseded (the error sentence on stderr), 2 timeout or usage (and a
// deployment or generation that does not exist, or a token that may not read it).
import { parseArgs } from 'node:util';
import type { Command } from '../cli.ts';
import { ConfigError } from '../errors.ts';
import { base, ClientError, connect, readEvents, timeoutOf, type Api } from './client.ts';

const WAIT_USAGE = 'keelson wait <project> <env> [--generation N] [--timeout 10m] [--url <url>] [--token <token>]  (or KEELSON_URL, KEELSON_TOKEN)';
/** The safety net when the event stream is down or a change journals no transition. */
const POLL_MS = 1000;

interface Phase {
  name: string;
  duration_ms: number | null;
  detail?: string | null;
  error?: string | null;
}

interface ActionView {
  generation: number;
  action: string;
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'superseded';
  image_ref: string | null;
  state: string | null;
  phases: Phase[];
  error: string | null;
  auto_rollback: { status: string; image_ref: string; error: string | null } | null;
  superseded_by: number | null;
}

const FINAL = new Set(['succeeded', 'failed', 'superseded']);

/** Server text (pod messages, SQL-written image refs) reaches a terminal: no control sequences. */
// eslint-disable-next-line no-control-regex
const printable = (text: string) => text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { url: { type: 'string' }, token: { type: 'string' }, timeout: { type: 'string' }, generation: { type: 'string' } },
  });
  const [project, env, ...extra] = positionals;
  if (!project || !env || extra.length > 0) throw new ConfigError('expected <project> <env>');
  let generation: number | undefined;
  if (values.generation !== undefined) {
    generation = /^\d{1,15}$/.test(values.generation) ? Number(values.generation) : 0;
    if (generation < 1) throw new ConfigError(`--generation: expected a generation of the deployment (an integer from 1); got "${values.generation}"`);
  }
  return { project, env, generation, timeoutMs: timeoutOf(values.timeout ?? '10m'), api: connect(values) };
}

/** A refusal that no retry changes (no such deployment or generation, a token that may not read it). */
const refused = (error: unknown): error is ClientError =>
  error instanceof ClientError && error.status !== undefined && error.status >= 400 && error.status < 500 && error.status !== 429;

function phaseLine(phase: Phase): string {
  const took = phase.duration_ms === null ? '' : ` (${phase.duration_ms} ms)`;
  const note = phase.error ? `: ${phase.error}` : phase.detail ? `: ${phase.detail}` : '';
  return `  phase ${phase.name} ${phase.error ? 'failed' : 'done'}${took}${note}`;
}

async function follow(api: Api, project: string, env: string, generation: number, timeoutMs: number): Promise<number> {
  const path = `${base(project, env)}/actions/${generation}`;
  const controller = new AbortController();
  // any transition of the deployment may move the action: look again at once (also when it came
  // while the last look was under way)
  let woken = false;
  let resume: () => void = () => {};
  const stream = readEvents(api, `${base(project, env)}/events`, undefined, controller.signal, () => {
    woken = true;
    resume();
  }).catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  let printedPhases = 0;
  let lastLine = '';
  let complained = false;
  try {
    for (;;) {
      let view: ActionView | undefined;
      try {
        view = (await api.call<ActionView>('GET', path)).body;
        complained = false;
      } catch (error) {
        if (refused(error)) throw error;
        // the server restarting or a network blip: keep trying until the deadline
        if (!complained) console.error(`keelson wait: ${(error as Error).message}; retrying`);
        complained = true;
      }
      if (view) {
        const line = `${view.action} of ${project}/${env} generation ${generation}: ${view.status}${view.state ? ` (${view.state})` : ''}`;
        if (line !== lastLine) {
          console.log(printable(line));
          lastLine = line;
        }
        for (const phase of view.phases.slice(printedPhases)) console.log(printable(phaseLine(phase)));
        printedPhases = Math.max(printedPhases, view.phases.length);
        if (FINAL.has(view.status)) return outcome(project, env, view);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        console.error(`keelson wait: generation ${generation} of ${project}/${env} did not finish within ${Math.round(timeoutMs / 1000)} s (last seen: ${lastLine || 'nothing'})`);
        return 2;
      }
      if (!woken) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(POLL_MS, left));
          resume = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      woken = false;
      resume = () => {};
    }
  } finally {
    controller.abort();
    await stream;
  }
}

function outcome(project: string, env: string, view: ActionView): number {
  const image = view.image_ref ? ` (image ${view.image_ref})` : '';
  if (view.status === 'succeeded') {
    console.log(printable(`${project}/${env}: ${view.action} of generation ${view.generation} succeeded${image}`));
    return 0;
  }
  if (view.status === 'superseded') {
    const newer = view.superseded_by ? `; follow it with: keelson wait ${project} ${env} --generation ${view.superseded_by}` : '';
    console.error(printable(`keelson wait: ${project}/${env} generation ${view.generation} was superseded: ${view.error ?? 'a newer generation came first'}${newer}`));
    return 1;
  }
  const rollback = view.auto_rollback ? ` Auto-rollback to ${view.auto_rollback.image_ref} ${view.auto_rollback.status}.` : '';
  console.error(printable(`keelson wait: ${project}/${env} ${view.action} of generation ${view.generation} failed${image}: ${view.error ?? 'no error recorded'}${rollback}`));
  return 1;
}

export const waitCommand: Command = {
  summary: 'Follow the action of a generation (default: the current one) until it ends: exit 0 succeeded, 1 failed or superseded, 2 timeout.',
  usage: WAIT_USAGE,
  run: async (argv) => {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(argv);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      console.error(`keelson wait: ${error.message}\nUsage: ${WAIT_USAGE}`);
      return 2;
    }
    const { api, project, env, timeoutMs } = parsed;
    try {
      const generation =
        parsed.generation ?? (await api.call<{ deployment: { generation: number } }>('GET', base(project, env))).body.deployment.generation;
      return await follow(api, project, env, generation, timeoutMs);
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      // a deployment or generation that does not exist is a mistake in the call, not a failed action
      console.error(`keelson wait: ${error.message}`);
      return 2;
    }
  },
};
