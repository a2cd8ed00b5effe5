// Entry point of a render process, started by renderer.ts; it renders the jobs it is sent one at a
// time, all of one ops repo (renderer.ts never hands it another repo's). It runs under
// Node's permission model with read access to keelson's own code only (no checkout, no data
// directory, no kubeconfig), no child processes or workers, an empty environment and its own heap
// limit. It loads what it needs, hardens nunjucks (sandbox.ts), locks itself down (lockdown.ts),
// says it is ready, and reports each job's result over the IPC channel.
//
// It reads no ops repo file itself: the job carries the manifests and values files, and an
// `{% include %}` asks the main process over a pipe (frames.ts), which resolves the name inside
// the ops repo root and answers. nunjucks loads templates synchronously, so the render process
// blocks on that pipe until the answer arrives.
import { readFrameSync, REPLY_FD, REQUEST_FD, writeFrameSync } from './frames.ts';
import { lockDown } from './lockdown.ts';
import { renderTemplates, serializeError, type TemplateJob, type TemplateReply } from './renderTemplates.ts';
import { installSandbox } from './sandbox.ts';

export interface JobMessage {
  readonly type: 'job';
  readonly job: TemplateJob;
}

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly result: ReturnType<typeof renderTemplates> }
  | { readonly type: 'failed'; readonly error: ReturnType<typeof serializeError> };

/** Frames the render process writes on REQUEST_FD. */
export type ChannelFrame = { readonly kind: 'read'; readonly name: string } | { readonly kind: 'progress'; readonly rel: string };

const send = process.send?.bind(process);
if (!send) throw new Error('renderProcess.ts runs as a child process with an IPC channel only (see renderer.ts).');

/** A small render run at start-up, so the real one finds nunjucks and yaml compiled and warm. */
const WARM_UP: TemplateJob = {
  base: '',
  files: [{ rel: 'warm-up.yaml', src: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ project }}-{{ values.n }}\ndata:\n  a: "{{ values.a }}"\n  b: {{ values | tojson }}\n' }],
  valueFiles: [{ rel: 'values.yaml', src: 'n: 1\na: x\n' }],
  valuesOverride: {},
  variables: { image_ref: 'warm-up', project: 'warm-up', environment: 'warm-up', namespace: 'warm-up', deployment_id: 'warm-up' },
  maxObjects: 1,
  maxBytes: 65_536,
  timeoutMs: 10_000,
};

process.title = 'keelson-render';
installSandbox();
lockDown();
renderTemplates(WARM_UP, { readTemplate: () => ({ kind: 'missing' }), progress: () => undefined });
// the main process is gone: nobody waits for this render
process.once('disconnect', () => process.exit(0));

process.on('message', (message: JobMessage) => {
  const readTemplate = (name: string): TemplateReply => {
    writeFrameSync(REQUEST_FD, { kind: 'read', name } satisfies ChannelFrame);
    return readFrameSync(REPLY_FD) as TemplateReply;
  };
  const progress = (rel: string) => writeFrameSync(REQUEST_FD, { kind: 'progress', rel } satisfies ChannelFrame);
  let outcome: ChildMessage;
  try {
    outcome = { type: 'done', result: renderTemplates(message.job, { readTemplate, progress }) };
  } catch (error) {
    outcome = { type: 'failed', error: serializeError(error) };
  }
  send(outcome);
});

send({ type: 'ready' } satisfies ChildMessage);
