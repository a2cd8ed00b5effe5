// A refusal raised inside the render process by keelson's own hooks (a forbidden lookup, a value
// that cannot be printed, an output cap). nunjucks wraps whatever a hook throws into its own error
// (class and fields lost, location added), so the hooks also record the first failure on the
// render's `FailureLog`; the render process then reports that failure's code with nunjucks' location.

import type { KeelsonError } from '../errors.ts';

export type FailureCode = 'template_forbidden' | 'render_template' | 'render_too_large' | 'render_timeout' | 'render_yaml';

export class RenderFailure extends Error {
  readonly code: FailureCode;

  constructor(code: FailureCode, message: string) {
    super(message);
    this.name = 'RenderFailure';
    this.code = code;
  }
}

export class FailureLog {
  /** A KeelsonError when the failure is a whole sentence already (a path the main process refused). */
  first: RenderFailure | KeelsonError | null = null;

  /** Records `failure` (the first one wins: later ones are consequences) and returns it to throw. */
  raise(failure: RenderFailure): RenderFailure {
    this.first ??= failure;
    return failure;
  }
}

/**
 * A value quoted for a message, clipped: rendered values come from rows and repos anyone may
 * fill, and an error message (stored with the deployment's state) must stay a sentence.
 */
export function quoted(value: unknown, max = 80): string {
  return clipped(JSON.stringify(value) ?? String(value), max);
}

export function clipped(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
