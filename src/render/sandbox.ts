// nunjucks, hardened for templates written by whoever can push to an ops repo. nunjucks is not a
// sandbox: its compiled templates read any JavaScript property (`range.constructor` is Function,
// so `{{ range.constructor("return process")() }}` runs code), and its compiler pastes names into
// generated JavaScript. This module closes both doors, in the render process only:
//
// 1. At compile time every template is parsed first and refused (`template_forbidden`) if it names
//    a prototype member (`constructor`, `__proto__`, `prototype`, the legacy accessors) or uses a
//    name that is not a plain identifier (nunjucks accepts `a"b` as a name and writes it into the
//    generated code unescaped). Names of called expressions, which nunjucks also writes into code,
//    lose backslashes and line breaks.
// 2. At run time nunjucks' member lookup (computed keys included: `x["constr" ~ "uctor"]`) and
//    variable lookup are replaced: a template reads own properties of data (values, loop, its own
//    dicts and imports), a fixed list of string/array/number/RegExp methods, and nothing of
//    functions; the forbidden names and JavaScript globals (`process`, `global`, `require`, …)
//    fail with `template_forbidden`.
// 3. Output goes through outputSlots.ts (values become placeholders, filled in after YAML
//    parsing), and every append to an output buffer is checked against the output cap, so a loop
//    emitting gigabytes stops at the cap instead of exhausting memory.
//
// Hazard: these patches change the nunjucks module instance of the process they run in. They must
// never run in keelson's main process; installSandbox() refuses to run without Node's permission
// model, which only the render process has.
import { createRequire } from 'node:module';
import nunjucks from 'nunjucks';
import { stringify as toYamlText } from 'yaml';
import { RenderFailure, type FailureLog } from './failure.ts';
import { outputTooLarge, type OutputSlots } from './outputSlots.ts';

const require = createRequire(import.meta.url);

/* The parts of nunjucks' internals used here (nunjucks 3.2.4 has no types for them). */
interface SafeStringLike {
  readonly val: string;
  readonly length: number;
}
type SafeStringClass = new (value: string) => SafeStringLike;
interface Frame {
  lookup(name: string): unknown;
}
interface Context {
  readonly ctx: Record<string, unknown>;
  readonly env: { readonly globals: Record<string, unknown> };
}
interface Runtime {
  SafeString: SafeStringClass;
  Frame: { prototype: { set(this: unknown, ...args: unknown[]): unknown } };
  callWrap(this: unknown, ...args: unknown[]): unknown;
  markSafe(value: unknown): unknown;
  memberLookup(obj: unknown, key: unknown): unknown;
  contextOrFrameLookup(context: Context, frame: Frame, name: string): unknown;
  suppressValue(value: unknown, autoescape: boolean): unknown;
  handleError(error: unknown, lineno: number, colno: number): unknown;
  checkOutput?: (buffer: string) => void;
}
interface AstNode {
  readonly typename: string;
  readonly fields: readonly string[];
  readonly lineno: number;
  readonly colno: number;
  readonly value?: unknown;
  children?: unknown[];
  [field: string]: unknown;
}
interface CompilerInstance {
  buffer: string;
  compile(node: unknown, frame?: unknown): void;
  getCode(): string;
  fail(message: string, lineno?: number, colno?: number): never;
  _emit(code: string): void;
  _emitLine(code: string): void;
}
interface CompilerClass {
  new (templateName: string, throwOnUndefined: boolean): CompilerInstance;
  prototype: CompilerInstance & Record<string, (...args: unknown[]) => unknown>;
}
type FilterFunction = (this: unknown, ...args: unknown[]) => unknown;

const runtime = require('nunjucks/src/runtime.js') as Runtime;
const compilerModule = require('nunjucks/src/compiler.js') as { compile: (...args: unknown[]) => string; Compiler: CompilerClass };
const parser = require('nunjucks/src/parser.js') as { parse(src: string, extensions: unknown, opts: unknown): AstNode };
const transformer = require('nunjucks/src/transformer.js') as { transform(ast: AstNode, asyncFilters: unknown, name: string): AstNode };
const nodes = require('nunjucks/src/nodes.js') as Record<'Filter' | 'Symbol' | 'NodeList', new (lineno: number, colno: number, ...fields: unknown[]) => AstNode>;
const builtinFilters = require('nunjucks/src/filters.js') as Record<string, FilterFunction>;
const { SafeString } = runtime;

/** Members that lead from any value to its prototype chain and from there to Function. */
export const FORBIDDEN_MEMBERS: ReadonlySet<string> = new Set([
  'constructor',
  'prototype',
  '__proto__',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

/** JavaScript's global names: never template variables unless a template defines them itself. */
const JS_GLOBALS: ReadonlySet<string> = new Set(['process', 'global', 'globalThis', 'require', 'module', 'exports', 'Function', 'eval', 'Buffer', 'Reflect', 'Proxy', 'Object', 'this']);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/* Methods a template may call on a value of each kind: none of them returns anything but data. */
const STRING_METHODS = new Set([
  'at', 'charAt', 'charCodeAt', 'codePointAt', 'concat', 'endsWith', 'includes', 'indexOf', 'lastIndexOf', 'match', 'normalize', 'padEnd', 'padStart', 'repeat',
  'replace', 'replaceAll', 'slice', 'split', 'startsWith', 'substr', 'substring', 'toLowerCase', 'toString', 'toUpperCase', 'trim', 'trimEnd', 'trimStart',
]);
const ARRAY_METHODS = new Set(['at', 'concat', 'flat', 'includes', 'indexOf', 'join', 'lastIndexOf', 'pop', 'push', 'reverse', 'shift', 'slice', 'sort', 'splice', 'unshift']);
const NUMBER_METHODS = new Set(['toFixed', 'toPrecision', 'toString']);
const REGEXP_METHODS = new Set(['exec', 'test']);
const NO_METHODS = new Set<string>();

/** A file whose first line is this comment prints values verbatim (the pre-escaping behaviour). */
export const AUTOESCAPE_OFF = /^\uFEFF?\s*\{#-?\s*keelson:\s*autoescape\s+off\s*-?#\}/;

interface Session {
  readonly slots: OutputSlots;
  readonly failures: FailureLog;
  readonly maxChars: number;
  /** Date.now() past which the render stops itself (see tick()). */
  readonly deadline: number;
}

let session: Session | null = null;

function active(): Session {
  if (!session) throw new Error('No render is active in this process.');
  return session;
}

function forbidden(reason: string): RenderFailure {
  return active().failures.raise(new RenderFailure('template_forbidden', reason));
}

function methodsOf(obj: unknown): ReadonlySet<string> {
  if (typeof obj === 'string' || obj instanceof SafeString) return STRING_METHODS;
  if (Array.isArray(obj)) return ARRAY_METHODS;
  if (typeof obj === 'number') return NUMBER_METHODS;
  if (obj instanceof RegExp) return REGEXP_METHODS;
  return NO_METHODS;
}

/**
 * The key as the lookup will use it, computed once: converting an object key calls its
 * `toString`, which a template could make return one thing to the check and another to the read.
 */
function memberName(key: unknown): string | number {
  if (typeof key === 'string' || typeof key === 'number') return key;
  if (key instanceof SafeString) return key.val;
  throw forbidden(`a member name must be a string or a number, not ${key === null ? 'null' : typeof key}`);
}

function memberLookup(obj: unknown, key: unknown): unknown {
  const name = memberName(key);
  if (typeof name === 'string' && FORBIDDEN_MEMBERS.has(name)) throw forbidden(`\`${name}\` reaches JavaScript internals and cannot be used in templates`);
  if (obj === undefined || obj === null) return undefined;
  if (typeof obj === 'function') throw forbidden(`functions and macros have no members in templates (\`.${String(name)}\`)`);
  const own = (typeof obj === 'object' || typeof obj === 'string') && Object.hasOwn(Object(obj), name);
  if (!own && !(typeof name === 'string' && methodsOf(obj).has(name))) return undefined;
  const value = (obj as Record<string | number, unknown>)[name];
  if (typeof value !== 'function') return value;
  // bound, as nunjucks does, so `list.push(x)` acts on `list`
  return (...args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(obj, args);
}

function contextOrFrameLookup(context: Context, frame: Frame, name: string): unknown {
  if (FORBIDDEN_MEMBERS.has(name)) throw forbidden(`\`${name}\` reaches JavaScript internals and cannot be used in templates`);
  const local = frame.lookup(name);
  if (local !== undefined) return local;
  if (Object.hasOwn(context.ctx, name)) return context.ctx[name];
  if (Object.hasOwn(context.env.globals, name)) return context.env.globals[name];
  if (JS_GLOBALS.has(name)) throw forbidden(`\`${name}\` is not a template variable; templates cannot reach JavaScript's globals`);
  return undefined;
}

/** `{{ x }}`: the template's own text (SafeString: macro output, `| safe`, toyaml, tojson) stays as is. */
function suppressValue(value: unknown): unknown {
  if (value instanceof SafeString) return value;
  return active().slots.put(value);
}

let ticks = 0;

/**
 * The main process kills a render at its timeout. The render also stops itself a little later,
 * checked on loop iterations, calls and output, so it ends even if the main process died and left
 * it running (a loop in native code, a regular expression, is the one thing this cannot stop).
 */
function tick(): void {
  ticks = (ticks + 1) & 1023;
  if (ticks === 0 && Date.now() > active().deadline) {
    throw active().failures.raise(new RenderFailure('render_timeout', 'the render ran past its time limit'));
  }
}

function checkOutput(buffer: string): void {
  const { slots, maxChars, failures } = active();
  tick();
  if (buffer.length + slots.valueChars > maxChars) throw failures.raise(outputTooLarge(maxChars));
}

/** Refuses names nunjucks would paste into generated JavaScript, and prototype members. */
function validateTemplate(ast: AstNode, compiler: CompilerInstance): void {
  const fail = (node: AstNode, reason: string): never => {
    active().failures.raise(new RenderFailure('template_forbidden', reason));
    return compiler.fail(reason, node.lineno, node.colno);
  };
  const stack: unknown[] = [ast];
  while (stack.length > 0) {
    const item = stack.pop();
    if (Array.isArray(item)) {
      stack.push(...item);
      continue;
    }
    if (typeof item !== 'object' || item === null || !('typename' in item)) continue;
    const node = item as AstNode;
    if (node.typename === 'Symbol') {
      const name = String(node.value);
      if (!IDENTIFIER.test(name)) fail(node, `${JSON.stringify(name)} is not a valid name (letters, digits and _ only)`);
      if (FORBIDDEN_MEMBERS.has(name)) fail(node, `\`${name}\` reaches JavaScript internals and cannot be used in templates`);
    }
    if (node.typename === 'LookupVal') {
      const val = node.val as AstNode | null;
      if (val?.typename === 'Literal' && typeof val.value === 'string' && FORBIDDEN_MEMBERS.has(val.value)) {
        fail(val, `\`${val.value}\` reaches JavaScript internals and cannot be used in templates`);
      }
    }
    for (const field of node.fields) stack.push(node[field]);
  }
}

function rawOutput(value: unknown): unknown {
  // a file with autoescape off keeps nunjucks' own message for undefined values
  if (value === undefined || value === null) throw new Error('attempted to output null or undefined value');
  return new SafeString(String(value));
}

/**
 * Emits output-cap checks after every append to a buffer, turns `{% set x %}…{% endset %}`
 * captures into template text (as Jinja does with autoescape on: values inside are placeholders
 * already), and in an `autoescape off` file prints every value verbatim.
 */
const base = compilerModule.Compiler.prototype;
const callBase = (method: string, self: unknown, ...args: unknown[]): unknown => base[method]!.apply(self, args);

class SandboxCompiler extends (compilerModule.Compiler as unknown as new (templateName: string, throwOnUndefined: boolean) => CompilerInstance) {
  raw = false;

  compileOutput(node: AstNode, frame: unknown): void {
    // nunjucks tracks the position for errors only at calls; a refused lookup or an unprintable
    // value in `{{ values.x }}` should name its line too
    this._emitLine(`lineno = ${node.lineno}; colno = ${node.colno};`);
    if (this.raw) {
      node.children = (node.children ?? []).map((child) => {
        const c = child as AstNode;
        if (c.typename === 'TemplateData') return c;
        const name = new nodes.Symbol(c.lineno, c.colno, '__keelson_raw');
        return new nodes.Filter(c.lineno, c.colno, name, new nodes.NodeList(c.lineno, c.colno, [c]));
      });
    }
    callBase('compileOutput', this, node, frame);
    this._emitLine(`runtime.checkOutput(${this.buffer});`);
  }

  compileInclude(node: AstNode, frame: unknown): void {
    callBase('compileInclude', this, node, frame);
    this._emitLine(`runtime.checkOutput(${this.buffer});`);
  }

  compileBlock(node: AstNode, frame: unknown): void {
    callBase('compileBlock', this, node, frame);
    this._emitLine(`runtime.checkOutput(${this.buffer});`);
  }

  compileCapture(node: AstNode, frame: unknown): void {
    this._emit('runtime.markSafe(');
    callBase('compileCapture', this, node, frame);
    this._emit(')');
  }

  /** nunjucks writes this name into a JavaScript string literal, escaping only `"`. */
  _getNodeName(node: AstNode): string {
    const name = callBase('_getNodeName', this, node) as string;
    return name.replace(/[\\\n\r\u2028\u2029]/g, '?');
  }
}

function compileTemplate(src: string, asyncFilters: unknown, extensions: unknown, name: string, opts: { throwOnUndefined?: boolean } = {}): string {
  const compiler = new SandboxCompiler(name, opts.throwOnUndefined === true);
  const ast = parser.parse(src, extensions, opts);
  validateTemplate(ast, compiler);
  compiler.raw = AUTOESCAPE_OFF.test(src);
  compiler.compile(transformer.transform(ast, asyncFilters, name));
  return compiler.getCode();
}

let installed = false;

/** Replaces nunjucks' lookups, output and compiler in this process (idempotent). */
export function installSandbox(): void {
  if (installed) return;
  if (!process.permission) throw new Error('The template sandbox changes nunjucks for its whole process; install it in a render process only (started with --permission).');
  runtime.memberLookup = memberLookup;
  runtime.contextOrFrameLookup = contextOrFrameLookup;
  runtime.suppressValue = suppressValue;
  runtime.checkOutput = checkOutput;
  const setVariable = runtime.Frame.prototype.set;
  runtime.Frame.prototype.set = function (this: unknown, ...args: unknown[]) {
    tick();
    return setVariable.apply(this, args);
  };
  const callWrap = runtime.callWrap;
  runtime.callWrap = function (this: unknown, ...args: unknown[]) {
    tick();
    return callWrap.apply(this, args);
  };
  // compiled code tracks 0-based positions, which nunjucks reports as they are for errors thrown
  // at run time (its own undefined-value errors add 1): report every position 1-based
  const handleError = runtime.handleError;
  runtime.handleError = (error, lineno, colno) => handleError(error, lineno + 1, colno + 1);
  compilerModule.compile = compileTemplate as (...args: unknown[]) => string;
  installed = true;
}

function unwrapSafe(_key: unknown, value: unknown): unknown {
  if (value instanceof SafeString) return value.val;
  if (typeof value === 'function') throw active().failures.raise(new RenderFailure('render_template', 'a function cannot be written as YAML or JSON'));
  return value;
}

/**
 * JSON is YAML (1.2) flow syntax, so `tojson` output is one valid scalar or collection wherever a
 * value may stand. JSON leaves DEL, C1 controls, U+2028/2029 and BOM-like characters raw; YAML
 * wants non-printable characters escaped, so they are written as \uXXXX.
 */
function toJson(value: unknown, indent?: unknown): unknown {
  const text = JSON.stringify(value, unwrapSafe, typeof indent === 'number' ? indent : undefined);
  if (text === undefined) throw active().failures.raise(new RenderFailure('render_template', '`tojson` got an undefined value'));
  return new SafeString(text.replace(/[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * Block YAML. `toyaml` alone writes it from column 0 (a whole document, top-level keys);
 * `toyaml(n)` starts a new line and indents every line by n spaces, for `key: {{ v | toyaml(4) }}`.
 * Strings never fold across lines (lineWidth 0) and repeated objects are not turned into aliases.
 */
function toYaml(value: unknown, indent?: unknown): unknown {
  const width = indent === undefined ? 0 : Number(indent);
  if (!Number.isInteger(width) || width < 0 || width > 64) {
    throw active().failures.raise(new RenderFailure('render_template', '`toyaml(indent)` takes a whole number of spaces from 0 to 64'));
  }
  const text = toYamlText(value, unwrapSafe, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false }).replace(/\n$/, '');
  if (width === 0) return new SafeString(text);
  const pad = ' '.repeat(width);
  return new SafeString(`\n${text.split('\n').map((line) => (line === '' ? line : pad + line)).join('\n')}`);
}

/**
 * nunjucks filters that keep a SafeString safe while inserting an argument into it (`replace`'s
 * replacement, `truncate`'s ending) would paste a value into the YAML text: the argument is
 * printed through a placeholder instead, as Jinja's Markup escapes such arguments.
 */
function slotArgument(filter: FilterFunction, index: number): FilterFunction {
  return function (this: unknown, ...args: unknown[]) {
    const arg = args[index];
    if (args[0] instanceof SafeString && (typeof arg === 'string' || typeof arg === 'number')) {
      args[index] = new SafeString(active().slots.put(arg));
    }
    return filter.apply(this, args);
  };
}

/** HTML escaping means nothing in YAML: values are escaped for YAML anyway, so these filters change nothing. */
function noHtmlEscape(value: unknown): unknown {
  return value;
}

export interface SandboxOptions {
  readonly loader: nunjucks.ILoader;
  readonly slots: OutputSlots;
  readonly failures: FailureLog;
  /** The output cap, in UTF-16 code units (the final check is in UTF-8 bytes). */
  readonly maxChars: number;
  /** Date.now() past which the render stops itself. */
  readonly deadline: number;
}

/** A nunjucks environment for one render. installSandbox() must have run in this process. */
export function createSandboxEnvironment(options: SandboxOptions): nunjucks.Environment {
  if (!installed) throw new Error('installSandbox() must run before a sandboxed environment is created.');
  session = { slots: options.slots, failures: options.failures, maxChars: options.maxChars, deadline: options.deadline };
  // autoescape true: nunjucks passes it to suppressValue, which escapes for YAML (above)
  const env = new nunjucks.Environment(options.loader, { throwOnUndefined: true, autoescape: true });
  const replace = builtinFilters.replace as FilterFunction;
  const truncate = builtinFilters.truncate as FilterFunction;
  for (const [name, filter] of Object.entries({
    tojson: toJson,
    dump: toJson,
    toyaml: toYaml,
    replace: slotArgument(replace, 2),
    truncate: slotArgument(truncate, 3),
    escape: noHtmlEscape,
    e: noHtmlEscape,
    forceescape: noHtmlEscape,
    __keelson_raw: rawOutput,
  })) {
    env.addFilter(name, filter as (...args: unknown[]) => unknown);
  }
  return env;
}
