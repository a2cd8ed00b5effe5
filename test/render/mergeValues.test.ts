import { describe, expect, it } from 'vitest';
import { mergeValues } from '../../src/render/mergeValues.ts';

describe('mergeValues', () => {
  it.each([
    { title: 'objects merge key by key', layers: [{ a: { x: 1, y: 1 } }, { a: { y: 2, z: 2 } }], expected: { a: { x: 1, y: 2, z: 2 } } },
    { title: 'arrays replace', layers: [{ a: [1, 2, 3] }, { a: [4] }], expected: { a: [4] } },
    { title: 'scalars replace', layers: [{ a: 1, b: 'x' }, { a: 'one' }], expected: { a: 'one', b: 'x' } },
    { title: 'an object replaces a scalar', layers: [{ a: 1 }, { a: { b: 1 } }], expected: { a: { b: 1 } } },
    { title: 'a scalar replaces an object', layers: [{ a: { b: 1 } }, { a: 2 }], expected: { a: 2 } },
    { title: 'null replaces', layers: [{ a: { b: 1 } }, { a: null }], expected: { a: null } },
    { title: 'later layers win, left to right', layers: [{ a: 1 }, { a: 2 }, { a: 3 }, {}], expected: { a: 3 } },
    { title: 'deep nesting', layers: [{ a: { b: { c: { d: 1, e: 1 } } } }, { a: { b: { c: { e: 2 } } } }], expected: { a: { b: { c: { d: 1, e: 2 } } } } },
  ])('$title', ({ layers, expected }) => {
    expect(mergeValues(...(layers as Record<string, unknown>[]))).toEqual(expected);
  });

  it('does not modify its inputs or share nested objects with them', () => {
    const base = { a: { list: [1] } };
    const top = { a: { b: 2 } };
    const merged = mergeValues(base, top);
    (merged.a as { list: number[] }).list.push(99);
    expect(base).toEqual({ a: { list: [1] } });
    expect(top).toEqual({ a: { b: 2 } });
  });

  it('keeps a __proto__ key as data instead of polluting prototypes', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "a": {"__proto__": {"x": 1}}}') as Record<string, unknown>;
    const merged = mergeValues({ a: { keep: 1 } }, hostile);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(Object.hasOwn(merged, '__proto__')).toBe(true);
    expect((merged.a as Record<string, unknown>).keep).toBe(1);
  });
});
