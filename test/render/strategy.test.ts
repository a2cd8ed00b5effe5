import { describe, expect, it } from 'vitest';
import { parseDuration, StrategyInvalid, strategyOf } from '../../src/render/strategy.ts';

const canary = (steps: unknown) => ({ keelson: { strategy: { canary: { steps } } } });

function refusal(values: Record<string, unknown>): string {
  try {
    strategyOf(values);
  } catch (error) {
    expect(error).toBeInstanceOf(StrategyInvalid);
    expect((error as StrategyInvalid).kind).toBe('terminal');
    expect((error as StrategyInvalid).code).toBe('strategy_invalid');
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('keelson.strategy', () => {
  it('is replace when absent or declared so (today behaviour)', () => {
    expect(strategyOf({})).toEqual({ kind: 'replace' });
    expect(strategyOf({ keelson: { prune: true } })).toEqual({ kind: 'replace' });
    expect(strategyOf({ keelson: { strategy: 'replace' } })).toEqual({ kind: 'replace' });
    // a chart's own top-level `strategy` (a Deployment's rolling update) is not keelson's
    expect(strategyOf({ strategy: { type: 'RollingUpdate' } })).toEqual({ kind: 'replace' });
  });

  it('reads canary steps in order, durations in milliseconds', () => {
    expect(strategyOf(canary([{ setWeight: 1000 }, { pause: '30s' }, { waitHealthy: true }, { setWeight: 5000 }, { pause: '250ms' }]))).toEqual({
      kind: 'canary',
      steps: [{ setWeight: 1000 }, { pauseMs: 30_000 }, { waitHealthy: true }, { setWeight: 5000 }, { pauseMs: 250 }],
    });
  });

  it.each([
    [{ keelson: { strategy: 'canary' } }, 'keelson.strategy: must be "replace" or'],
    [{ keelson: { strategy: { canary: {} } } }, 'keelson.strategy.canary.steps:'],
    [{ keelson: { strategy: { bluegreen: {} } } }, 'keelson.strategy: unknown strategy "bluegreen"'],
    [canary([]), 'keelson.strategy.canary.steps: must list at least one step'],
    [canary([{ setWeight: 12_000 }]), 'keelson.strategy.canary.steps[0].setWeight: must be at most 10000'],
    [canary([{ setWeight: -1 }]), 'keelson.strategy.canary.steps[0].setWeight: must be at least 0'],
    [canary([{ setWeight: 10.5 }]), 'keelson.strategy.canary.steps[0].setWeight: must be a whole number'],
    [canary([{ setWeight: '10%' }]), 'keelson.strategy.canary.steps[0].setWeight: must be a number of basis points'],
    [canary([{ setWeight: 100 }, { pause: 'soon' }]), 'keelson.strategy.canary.steps[1].pause: must be a duration like'],
    [canary([{ pause: '25h' }]), 'keelson.strategy.canary.steps[0].pause: must be between 1ms and 24h'],
    [canary([{ pause: '0s' }]), 'keelson.strategy.canary.steps[0].pause: must be between 1ms and 24h'],
    [canary([{ waitHealthy: false }]), 'keelson.strategy.canary.steps[0].waitHealthy: must be true'],
    [canary([{ setWieght: 100 }]), 'keelson.strategy.canary.steps[0]: unknown step "setWieght"'],
    [canary([{ setWeight: 100, pause: '1s' }]), 'keelson.strategy.canary.steps[0]: a step is exactly one of'],
    [canary(Array.from({ length: 33 }, () => ({ setWeight: 1 }))), 'keelson.strategy.canary.steps: may list at most 32 steps'],
  ])('refuses %j naming the field', (values, message) => {
    expect(refusal(values)).toContain(message);
  });

  it('parses durations', () => {
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('10')).toBeNull();
  });
});
