// The rollout strategy a deployment declares in its merged values (`keelson.strategy`, any values
// layer or the row's values_override), checked at the render boundary so a typo fails the action
// with the field named, before anything is applied. Under `keelson:` like `keelson.prune`: a
// top-level `strategy` is what many charts call a Deployment's own rolling-update settings.
//
//   keelson:
//     strategy: replace            # the default: the running version is replaced in place
//   keelson:
//     strategy:
//       canary:
//         steps:
//           - setWeight: 1000      # basis points of traffic to the new revision (10 %)
//           - pause: 30s           # wait this long
//           - waitHealthy: true    # the new revision must be ready now
import { z } from 'zod';
import type { CanaryStep, Strategy } from '../../machines/deployment.machine.ts';
import { TerminalError } from '../errors.ts';

export const MAX_CANARY_STEPS = 32;
/** A pause longer than a day is a forgotten canary, not a plan; an operator promotes or aborts it. */
export const MAX_PAUSE_MS = 24 * 60 * 60 * 1000;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s", "5m", "1h", "250ms" → milliseconds, or null when it is none of those. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!match) return null;
  return Math.round(Number(match[1]) * (UNITS[match[2] as string] ?? 0));
}

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `must be a duration like "30s", "5m", "1h" or "500ms" (got ${JSON.stringify(text)})` });
    return z.NEVER;
  }
  if (ms < 1 || ms > MAX_PAUSE_MS) {
    ctx.addIssue({ code: 'custom', message: `must be between 1ms and 24h (got ${text})` });
    return z.NEVER;
  }
  return ms;
});

// one schema per step kind: a step has exactly one key, so its schema gives the precise issue
const stepSchemas = {
  setWeight: z.number({ error: 'must be a number of basis points (1000 = 10 %)' }).int('must be a whole number of basis points').min(0, 'must be at least 0 basis points').max(10_000, 'must be at most 10000 basis points (100 %)'),
  pause: duration,
  waitHealthy: z.literal(true, { error: 'must be true' }),
} as const;

const canarySchema = z.strictObject({
  canary: z.strictObject({
    steps: z.array(z.unknown(), { error: 'must be a list of steps' }).min(1, 'must list at least one step').max(MAX_CANARY_STEPS, `may list at most ${MAX_CANARY_STEPS} steps`),
  }, { error: 'must be a mapping with steps' }),
});

export class StrategyInvalid extends TerminalError {
  constructor(message: string) {
    super(message, { code: 'strategy_invalid' });
  }
}

function where(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${String(key)}`), 'keelson.strategy');
}

function parseStep(raw: unknown, index: number): CanaryStep {
  const path = ['canary', 'steps', index];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || Object.keys(raw).length !== 1) {
    throw new StrategyInvalid(`${where(path)}: a step is exactly one of setWeight, pause or waitHealthy (got ${JSON.stringify(raw)}).`);
  }
  const key = Object.keys(raw)[0] as string;
  if (key !== 'setWeight' && key !== 'pause' && key !== 'waitHealthy') {
    throw new StrategyInvalid(`${where(path)}: unknown step ${JSON.stringify(key)}; a step is setWeight, pause or waitHealthy.`);
  }
  const parsed = stepSchemas[key].safeParse((raw as Record<string, unknown>)[key]);
  if (!parsed.success) throw new StrategyInvalid(`${where([...path, key])}: ${parsed.error.issues[0]?.message ?? 'invalid value'}.`);
  if (key === 'setWeight') return { setWeight: parsed.data as number };
  if (key === 'pause') return { pauseMs: parsed.data as number };
  return { waitHealthy: true };
}

/**
 * The strategy the merged values declare: `replace` when `keelson.strategy` is absent. Throws
 * `StrategyInvalid` (terminal) naming the field, e.g. `keelson.strategy.canary.steps[1].pause`.
 */
export function strategyOf(values: Record<string, unknown>): Strategy {
  const keelson = values.keelson;
  if (keelson === undefined || keelson === null) return { kind: 'replace' };
  if (typeof keelson !== 'object' || Array.isArray(keelson)) return { kind: 'replace' };
  const raw = (keelson as Record<string, unknown>).strategy;
  if (raw === undefined || raw === null) return { kind: 'replace' };
  if (raw === 'replace') return { kind: 'replace' };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new StrategyInvalid(`keelson.strategy: must be "replace" or { canary: { steps: [...] } } (got ${JSON.stringify(raw)}).`);
  }
  const other = Object.keys(raw).find((key) => key !== 'canary');
  if (other !== undefined) throw new StrategyInvalid(`keelson.strategy: unknown strategy ${JSON.stringify(other)}; it is "replace" or { canary: { steps: [...] } }.`);
  const parsed = canarySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StrategyInvalid(`${where(issue?.path ?? [])}: ${issue?.message ?? 'invalid value'}.`);
  }
  return { kind: 'canary', steps: parsed.data.canary.steps.map(parseStep) };
}
