// nunjucks errors → TerminalErrors naming the file and line. nunjucks reports "(file) [Line 3,
// Column 5]\n  message", nested once per include, and loses the class of whatever a hook threw;
// the hook's own failure (FailureLog) supplies the code and the reason, nunjucks the location.
import { KeelsonError, TerminalError } from '../errors.ts';
import type { RenderFailure } from './failure.ts';

const NUNJUCKS_LOCATION = /^\s*(?:Template render error: )?\(([^()\n]*)\)(?: \[Line (\d+)(?:, Column (\d+))?\])?/gm;

/**
 * The `{{ … }}` output expression of a source line at a 1-based column as nunjucks reports it
 * (the column points into or at the start of the tag); the only one on the line otherwise.
 */
function outputExpressionAt(source: string | undefined, line: number, column: number | undefined): string | undefined {
  const text = source?.split('\n')[line - 1];
  if (text === undefined) return undefined;
  const tags = [...text.matchAll(/\{\{-?\s*(.*?)\s*-?\}\}/g)].map((m) => ({ start: m.index, end: m.index + m[0].length, text: m[0] }));
  if (column !== undefined) {
    const at = column - 1;
    const hit = tags.find((tag) => tag.start <= at && at < tag.end) ?? tags.find((tag) => tag.start >= at - 2 && tag.start <= at + 2);
    if (hit) return hit.text;
  }
  return tags.length === 1 ? tags[0]?.text : undefined;
}

const ADVICE: Record<string, string> = {
  template_forbidden: 'Remove it from the template in the ops repo.',
  render_too_large: 'Make the templates render less (or split the deployment), or raise KEELSON_RENDER_MAX_BYTES.',
  render_timeout: 'Make the templates do less work, or raise KEELSON_RENDER_TIMEOUT.',
};

const HEADLINE: Record<string, string> = {
  template_forbidden: 'Template refused',
  render_too_large: 'Rendering stopped',
  render_timeout: 'Rendering stopped',
};

export interface TemplateErrorContext {
  /** The first failure a keelson hook raised during this render, if any. */
  readonly failure: RenderFailure | KeelsonError | null;
  /** The file being rendered, when nunjucks names none. */
  readonly file: string;
  /** nunjucks' template name (repo-root-relative) → the name shown to users. */
  readonly display: (name: string) => string;
  /** The source of a template by nunjucks' name, for naming the expression at fault. */
  readonly sourceOf: (name: string) => string | undefined;
}

export function templateError(error: unknown, context: TemplateErrorContext): KeelsonError {
  const { failure } = context;
  // path refusals are whole sentences already, and the loader's location adds nothing
  if (failure instanceof KeelsonError) return failure;
  const message = error instanceof Error ? error.message : String(error);
  let file = context.file;
  let name: string | undefined;
  let line: string | undefined;
  let column: string | undefined;
  for (const match of message.matchAll(NUNJUCKS_LOCATION)) {
    if (match[1] && match[1] !== 'unknown path') {
      name = match[1];
      file = context.display(match[1]);
    }
    if (match[2]) {
      line = match[2];
      column = match[3];
    }
  }
  const code = failure?.code ?? 'render_template';
  let reason = failure?.message;
  if (reason === undefined) {
    const lines = message
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    reason = (lines.at(-1) ?? message).replace(/^Template render error: /, '').replace(/^(Error|RangeError|TypeError): /, '');
  }
  if (/null or undefined value/.test(reason)) {
    // nunjucks does not say which variable: name the expression at the reported position
    const expression = name && line ? outputExpressionAt(context.sourceOf(name), Number(line), column ? Number(column) : undefined) : undefined;
    reason +=
      (expression ? ` in \`${expression}\`` : '') +
      ' (a variable used here is undefined; the variables are image_ref, project, environment, namespace, deployment_id and values; define the value in values.yaml or deployments.values_override, or use `| default(...)`)';
  }
  const where = line ? `${file}:${line}${column ? `:${column}` : ''}` : file;
  return new TerminalError(`${HEADLINE[code] ?? 'Template error'} at ${where}: ${reason}. ${ADVICE[code] ?? 'Fix the template in the ops repo.'}`, { code });
}
