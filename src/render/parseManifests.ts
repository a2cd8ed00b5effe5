// Rendered text → Kubernetes objects. Each YAML document must be an object with apiVersion, kind
// and metadata.name; empty documents (stray `---`, comment-only) are skipped. Line numbers are
// of the rendered text, which matches the template line for line unless a tag emits newlines
// (printed values never do: they are filled in after parsing, see outputSlots.ts). Documents are
// composed one at a time, so the object cap stops a flood of documents as it is read.
import { Composer, LineCounter, Parser, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { TerminalError } from '../errors.ts';
import type { KubeObject } from '../kube/types.ts';
import { clipped, quoted } from './failure.ts';
import { isPlainObject } from './mergeValues.ts';

export type { KubeObject };

export interface ParsedObject {
  readonly object: KubeObject;
  readonly line: number;
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? message;
}

function invalid(file: string, line: number, problem: string): TerminalError {
  return new TerminalError(`${file}:${line}: ${problem}. Fix the manifest in the ops repo.`, { code: 'render_invalid_object' });
}

function checkStringMap(value: unknown, field: string, file: string, line: number): void {
  if (value === undefined || value === null) return;
  if (!isPlainObject(value)) throw invalid(file, line, `${field} must be a mapping of strings`);
  for (const [key, inner] of Object.entries(value)) {
    if (typeof inner !== 'string') {
      throw invalid(file, line, `${field}.${clipped(key)} must be a string, got ${quoted(inner)} (quote it in YAML)`);
    }
  }
}

export interface ParseOptions {
  /** Puts the printed values into each parsed document before it becomes JavaScript. */
  readonly fill?: (document: Document.Parsed, where: (node: YamlNode) => string) => void;
  /** Objects this file may still add (the rest of the render's budget) and the configured cap. */
  readonly objects?: { readonly remaining: number; readonly limit: number };
}

/** Parses every document of `text` (the rendered `file`) into validated Kubernetes objects. */
export function parseManifests(text: string, file: string, options: ParseOptions = {}): ParsedObject[] {
  const lineCounter = new LineCounter();
  const lineOf = (offset: number) => lineCounter.linePos(offset).line;
  const where = (node: YamlNode) => `${file}:${lineOf(node.range?.[0] ?? 0)}`;
  const composer = new Composer({ uniqueKeys: true });
  const objects: ParsedObject[] = [];
  for (const document of composer.compose(new Parser(lineCounter.addNewLine).parse(text))) {
    const problem = document.errors[0];
    if (problem) {
      const at = lineCounter.linePos(problem.pos[0]);
      throw new TerminalError(`Invalid YAML at ${file}:${at.line}:${at.col} (line of the rendered template): ${firstLine(problem.message)}. Fix the manifest in the ops repo.`, {
        code: 'render_yaml',
      });
    }
    if (document.contents === null) continue;
    const line = lineOf(document.contents.range[0]);
    options.fill?.(document, where);
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: 100 });
    } catch (error) {
      throw new TerminalError(`Invalid YAML at ${file}:${line}: ${firstLine((error as Error).message)}. Fix the manifest in the ops repo.`, {
        code: 'render_yaml',
      });
    }
    if (value === null || value === undefined) continue;
    if (options.objects && objects.length >= options.objects.remaining) {
      throw new TerminalError(
        `${file}:${line}: the templates render more than ${options.objects.limit} objects, the limit (KEELSON_RENDER_MAX_OBJECTS). Render fewer objects (split the deployment), or raise the limit.`,
        { code: 'render_too_large' },
      );
    }
    if (!isPlainObject(value)) throw invalid(file, line, `a document must be a Kubernetes object (a mapping), got ${Array.isArray(value) ? 'a list' : quoted(value)}`);
    const missing = [
      typeof value.apiVersion === 'string' && value.apiVersion !== '' ? null : 'apiVersion',
      typeof value.kind === 'string' && value.kind !== '' ? null : 'kind',
      isPlainObject(value.metadata) && typeof value.metadata.name === 'string' && value.metadata.name !== '' ? null : 'metadata.name',
    ].filter((field) => field !== null);
    if (missing.length > 0) throw invalid(file, line, `the object lacks ${missing.join(', ')}`);
    const metadata = value.metadata as Record<string, unknown>;
    if (metadata.namespace !== undefined && typeof metadata.namespace !== 'string') throw invalid(file, line, 'metadata.namespace must be a string');
    checkStringMap(metadata.labels, 'metadata.labels', file, line);
    checkStringMap(metadata.annotations, 'metadata.annotations', file, line);
    objects.push({ object: value as KubeObject, line });
  }
  return objects;
}

/** Parses a values file: a mapping, or an empty file. */
export function parseValues(text: string, file: string): Record<string, unknown> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const problem = document.errors[0];
  if (problem) {
    const at = problem.linePos?.[0];
    throw new TerminalError(`Invalid YAML at ${at ? `${file}:${at.line}:${at.col}` : file}: ${firstLine(problem.message)}. Fix the values file in the ops repo.`, {
      code: 'render_yaml',
    });
  }
  const value: unknown = document.toJS({ maxAliasCount: 100 });
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new TerminalError(`${file}:1: a values file must be a mapping of names to values. Fix the values file in the ops repo.`, { code: 'render_yaml' });
  }
  return value;
}
