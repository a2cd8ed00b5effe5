// The chaos suite's short profile (docs/operations.md, "Chaos suite"): every scenario of
// `npm run chaos` with fewer deployments, kills and seconds, against real keelson processes,
// a real PostgreSQL of its own (the scenarios stop and start it) and the simulator. A scenario
// fails the test when any invariant does; the message lists the violations.
// KEELSON_CHAOS_TEMPLATE=builtin for a checkout whose node_modules is a symlink.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario, SCENARIOS, type ScenarioResult } from '../../bench/chaos/scenarios.ts';

const template = process.env.KEELSON_CHAOS_TEMPLATE === 'builtin' ? 'builtin' : 'repo';

function failures(result: ScenarioResult): string[] {
  return Object.entries(result.violations).flatMap(([invariant, found]) => found.slice(0, 5).map((v) => `${invariant}: ${v}`));
}

describe('chaos (short profile)', () => {
  // one at a time: each scenario runs several keelson processes on a 2-core machine
  it.each(SCENARIOS)('%s keeps every invariant', { timeout: 600_000 }, async (scenario) => {
    const result = await runScenario(scenario, {
      profile: 'short',
      seed: 12,
      identity: 'stable',
      template,
      logDir: path.resolve('test-artifacts', 'chaos-logs'),
      progress: (line) => {
        if (process.env.KEELSON_CHAOS_PROGRESS) console.log(line);
      },
    });
    console.log(`${scenario}: ${JSON.stringify(result.figures)}`);
    // the message lists the violations (vitest would abbreviate a long array)
    expect(result.passed, `${scenario} broke invariants:\n${failures(result).join('\n')}`).toBe(true);
  });
});
