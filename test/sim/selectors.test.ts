import { describe, expect, it } from 'vitest';
import { matchesFields, matchesRequirements, parseFieldSelector, parseLabelSelector, SelectorError } from '../../src/sim/selectors.ts';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front', 'example.com/team': 'blue' };
  const cases: [string, boolean][] = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app!=web', false],
    ['tier in (front,back)', true],
    ['tier in (back)', false],
    ['tier notin (back)', true],
    ['missing notin (back)', true],
    ['tier notin (front)', false],
    ['app', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['example.com/team=blue,app=web', true],
    ['app=web, tier in (x, front)', true],
    ['app=web,tier=back', false],
  ];
  it.each(cases)('%j matches: %s', (selector, expected) => {
    expect(matchesRequirements(labels, parseLabelSelector(selector))).toBe(expected);
  });

  it.each(['app in (a', 'a=b=c', 'in in in', '=x'])('rejects %j', (selector) => {
    expect(() => parseLabelSelector(selector)).toThrow(SelectorError);
  });
});

describe('field selectors', () => {
  const obj = { metadata: { name: 'web', namespace: 'default' }, status: { phase: 'Running' } };
  const cases: [string, boolean][] = [
    ['metadata.name=web', true],
    ['metadata.name==web', true],
    ['metadata.name=db', false],
    ['metadata.name!=db', true],
    ['metadata.name=web,metadata.namespace=default', true],
    ['status.phase=Pending', false],
  ];
  it.each(cases)('%j matches: %s', (selector, expected) => {
    expect(matchesFields(obj, parseFieldSelector(selector, ['metadata.name', 'metadata.namespace', 'status.phase']))).toBe(expected);
  });

  it('rejects unsupported fields', () => {
    expect(() => parseFieldSelector('spec.replicas=1', ['metadata.name'])).toThrow('field label not supported: spec.replicas');
  });
});
