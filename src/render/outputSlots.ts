// How `{{ value }}` is escaped: it is not pasted into the YAML text at all. The template prints a
// placeholder (a random plain word, unique per render), the rendered text is parsed as YAML, and
// only then is each placeholder in a parsed scalar replaced by its value. The structure of every
// manifest is therefore fixed by the template text alone, whatever a value contains (newlines,
// `---`, `: `, `#`, quotes, anchors, tags, control and Unicode separator characters…), and the
// value reads back exactly as it was. Like a parameterised SQL query, not like quoting.
//
// Where the placeholder lands decides the value's type:
// - the whole of a plain scalar (`replicas: {{ n }}`): the value itself, so a number stays a
//   number and a string stays a string even when it looks like a number, a bool or null;
// - inside a larger scalar or any quoted/block scalar (`name: {{ p }}-web`, `"{{ x }}"`): the
//   value's text at that spot, and the scalar is a string.
// Places where a value would become structure (a tag, an anchor, an alias) are refused, as is a
// placeholder a filter has altered (`| upper` over a macro's output), rather than guessed at.
import { randomBytes } from 'node:crypto';
import { isAlias, isMap, isPair, isScalar, isSeq, Scalar, type Document, type Node as YamlNode, type YAMLMap } from 'yaml';
import { formatBytes } from '../bytes.ts';
import { TerminalError } from '../errors.ts';
import { quoted, RenderFailure, type FailureLog } from './failure.ts';

export type SlotValue = string | number | boolean;

const STR_TAG = 'tag:yaml.org,2002:str';

function describeUnprintable(value: unknown): string | null {
  if (typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number') return Number.isFinite(value) ? null : `the number ${String(value)}, which YAML and JSON cannot carry`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  return `a ${typeof value}`;
}

export class OutputSlots {
  /** Lower-case, starts with a letter: a plain YAML string wherever it lands. */
  readonly token: string;
  private readonly values: SlotValue[] = [];
  private readonly expanded = new Map<number, string>();
  private readonly pattern: RegExp;
  private readonly whole: RegExp;
  private readonly failures: FailureLog;
  private readonly maxChars: number;
  /** UTF-16 length of every value printed so far: counted against the output cap while rendering. */
  valueChars = 0;

  constructor(failures: FailureLog, maxChars: number, token = `kv${randomBytes(6).toString('hex')}`) {
    this.failures = failures;
    this.maxChars = maxChars;
    this.token = token;
    this.pattern = new RegExp(`${token}(\\d+)z`, 'g');
    this.whole = new RegExp(`^${token}(\\d+)z$`);
  }

  /** The placeholder to print for `value`; throws (and records) a RenderFailure for what is no scalar. */
  put(value: unknown): string {
    const unprintable = describeUnprintable(value);
    if (unprintable) {
      throw this.failures.raise(
        new RenderFailure(
          'render_template',
          `\`{{ … }}\` prints ${unprintable}; print scalars only: emit a list or mapping with \`| toyaml(indent)\` or \`| tojson\`, or join it into a string`,
        ),
      );
    }
    const slot = value as SlotValue;
    this.valueChars += typeof slot === 'string' ? slot.length : String(slot).length;
    if (this.valueChars > this.maxChars) throw this.failures.raise(outputTooLarge(this.maxChars));
    this.values.push(slot);
    return `${this.token}${this.values.length - 1}z`;
  }

  /** UTF-8 size of every printed value, for the final output cap. */
  valueBytes(): number {
    let total = 0;
    for (let i = 0; i < this.values.length; i++) total += Buffer.byteLength(this.textAt(i));
    return total;
  }

  private hasToken(text: string): boolean {
    return text.toLowerCase().includes(this.token);
  }

  /**
   * A printed string may itself hold placeholders (a string built from captured template output,
   * `{{ captured.trim() }}`). They stand for values printed earlier (a lower index), so expanding
   * terminates; the expansion counts against the output cap.
   */
  private textAt(index: number): string {
    const value = this.values[index];
    if (typeof value !== 'string') return String(value);
    if (!value.includes(this.token)) return value;
    const cached = this.expanded.get(index);
    if (cached !== undefined) return cached;
    const text = value.replace(this.pattern, (match, inner: string) => (Number(inner) < index ? this.textAt(Number(inner)) : match));
    this.valueChars += text.length - value.length;
    if (this.valueChars > this.maxChars) throw outputTooLarge(this.maxChars);
    this.expanded.set(index, text);
    return text;
  }

  private valueAt(index: number): SlotValue {
    const value = this.values[index];
    return typeof value === 'string' ? this.textAt(index) : (value as SlotValue);
  }

  /**
   * Puts the values into `document` (in place). `where(node)` names the node's `file:line` for
   * messages. Throws TerminalError for a value used as YAML syntax or a placeholder a filter changed.
   */
  fill(document: Document.Parsed, where: (node: YamlNode) => string): void {
    const maps: YAMLMap[] = [];
    // An explicit stack, not recursion: a hostile document may nest deeper than the call stack.
    const stack: unknown[] = [document.contents];
    while (stack.length > 0) {
      const node = stack.pop();
      if (isPair(node)) {
        stack.push(node.key, node.value);
        continue;
      }
      if (isAlias(node)) {
        if (this.hasToken(node.source)) throw asSyntax(where(node), 'an alias');
        continue;
      }
      if (!isScalar(node) && !isMap(node) && !isSeq(node)) continue;
      if (node.anchor && this.hasToken(node.anchor)) throw asSyntax(where(node), 'an anchor');
      if (node.tag && this.hasToken(node.tag)) throw asSyntax(where(node), 'a tag');
      if (isScalar(node)) this.fillScalar(node, where);
      else if (isMap(node)) {
        maps.push(node);
        stack.push(...node.items);
      } else stack.push(...node.items);
    }
    for (const map of maps) checkUniqueKeys(map, where);
  }

  private fillScalar(node: Scalar, where: (node: YamlNode) => string): void {
    const text = node.value;
    if (typeof text !== 'string' || !this.hasToken(text)) return;
    const indexes = [...text.matchAll(this.pattern)].map((match) => Number(match[1]));
    if (indexes.length === 0 || indexes.some((index) => index >= this.values.length)) throw mangled(where(node));
    if (node.tag && node.tag !== STR_TAG) {
      throw new TerminalError(
        `${where(node)}: the YAML tag ${node.tag} cannot apply to a printed value; convert the value in the template instead (\`| int\`, \`| float\`, \`| string\`). Fix the template in the ops repo.`,
        { code: 'render_yaml' },
      );
    }
    const whole = this.whole.exec(text);
    const value = whole && node.type === Scalar.PLAIN && !node.tag ? this.valueAt(Number(whole[1])) : text.replace(this.pattern, (_match, inner: string) => this.textAt(Number(inner)));
    // Values cannot hold the token (it is drawn after they are fixed): any left is a placeholder a
    // filter altered, in the template text or in a string the template built from its output.
    if (typeof value === 'string' && this.hasToken(value)) throw mangled(where(node));
    node.value = value;
  }
}

function mangled(where: string): TerminalError {
  return new TerminalError(
    `${where}: a filter changed the placeholder of a printed value (as \`| upper\` over a macro's output or a {% filter %} block would); apply filters to values before printing them. Fix the template in the ops repo.`,
    { code: 'render_template' },
  );
}

export function outputTooLarge(maxChars: number): RenderFailure {
  return new RenderFailure('render_too_large', `the rendered output exceeds the limit of ${formatBytes(maxChars)}`);
}

function asSyntax(where: string, what: string): TerminalError {
  return new TerminalError(
    `${where}: a printed value is used as ${what}, which would let the value shape the YAML; print values only as scalars or inside scalars. Fix the template in the ops repo.`,
    { code: 'render_yaml' },
  );
}

function checkUniqueKeys(map: YAMLMap, where: (node: YamlNode) => string): void {
  const seen = new Set<string>();
  for (const pair of map.items) {
    if (!isScalar(pair.key)) continue;
    const key = String(pair.key.value);
    if (seen.has(key)) {
      throw new TerminalError(`${where(pair.key)}: the key ${quoted(key)} appears twice in one mapping once the values are printed. Fix the template or the values.`, {
        code: 'render_yaml',
      });
    }
    seen.add(key);
  }
}
