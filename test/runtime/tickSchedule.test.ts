// The tick's schedule: a tick must get every actor whose due time has come (none missed), once,
// and none before its time. Checked by tables and against a plain scan over random operations.
import { describe, expect, it } from 'vitest';
import { TickSchedule } from '../../src/runtime/tickSchedule.ts';

const EVERY = Number.NEGATIVE_INFINITY;

describe('TickSchedule', () => {
  it.each([
    ['a due time reached', [['a', 100]], 100, ['a']],
    ['a due time not reached', [['a', 101]], 100, []],
    ['in flight: every tick', [['a', EVERY]], 0, ['a']],
    ['not scheduled (null)', [['a', null]], 1e15, []],
    ['earliest first', [['c', 30], ['a', 10], ['b', 20], ['d', 40]], 35, ['a', 'b', 'c']],
    ['set again later: only the new time counts', [['a', 10], ['a', 50]], 20, []],
    ['set again earlier', [['a', 50], ['a', 10]], 20, ['a']],
    ['unscheduled after it was scheduled', [['a', 10], ['a', null]], 20, []],
    ['the same time twice: taken once', [['a', 10], ['a', 10]], 20, ['a']],
  ] as const)('%s', (_name, sets, now, expected) => {
    const schedule = new TickSchedule();
    for (const [id, due] of sets) schedule.set(id, due);
    expect(schedule.takeDue(now)).toEqual(expected);
  });

  it('takes a due actor out until it is set again; deleting unschedules', () => {
    const schedule = new TickSchedule();
    schedule.set('a', 10);
    schedule.set('b', 10);
    schedule.delete('b');
    expect(schedule.takeDue(10)).toEqual(['a']);
    expect(schedule.takeDue(20)).toEqual([]);
    expect(schedule.dueOf('a')).toBeNull();
    // the runtime sets it again from the snapshot the TICK left
    schedule.set('a', EVERY);
    expect(schedule.takeDue(21)).toEqual(['a']);
    expect(schedule.size).toBe(0);
  });

  it('never misses a due actor nor takes one early (random operations against a scan)', () => {
    // a seeded generator: the same sequence every run
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const schedule = new TickSchedule();
    const expected = new Map<string, number>();
    let now = 0;
    for (let step = 0; step < 20_000; step++) {
      const id = `d${Math.floor(random() * 300)}`;
      const r = random();
      if (r < 0.5) {
        const due = random() < 0.1 ? EVERY : random() < 0.1 ? null : now + Math.floor(random() * 200) - 20;
        schedule.set(id, due);
        if (due === null) expected.delete(id);
        else expected.set(id, due);
      } else if (r < 0.55) {
        schedule.delete(id);
        expected.delete(id);
      } else if (r < 0.6) {
        now += Math.floor(random() * 50);
        const scan = [...expected].filter(([, due]) => due <= now).map(([id]) => id).sort();
        const taken = schedule.takeDue(now);
        expect([...taken].sort()).toEqual(scan);
        expect(new Set(taken).size).toBe(taken.length);
        for (const id of scan) expected.delete(id);
        // most come back, as the runtime sets each from its snapshot after the TICK
        for (const id of taken) {
          if (random() < 0.8) {
            const due = random() < 0.3 ? EVERY : now + 1 + Math.floor(random() * 100);
            schedule.set(id, due);
            expected.set(id, due);
          }
        }
      }
      expect(schedule.size).toBe(expected.size);
    }
  });
});
