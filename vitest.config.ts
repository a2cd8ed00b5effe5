import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Small files that run for minutes. Without recorded durations (a fresh clone: CI) vitest starts
 * larger files first, so these would start last and run alone on one worker while the other
 * idles; started first, the rest of the suite runs beside them.
 */
const LONG_RUNNING = ['test/chaos/chaos.test.ts', 'test/e2e/idleRequests.test.ts', 'test/e2e/canaryKill.test.ts', 'test/ui/visualizer.test.ts', 'test/e2e/notifyKill.test.ts'];

class LongRunningFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const index = LONG_RUNNING.findIndex((file) => spec.moduleId.endsWith(file));
      return index === -1 ? LONG_RUNNING.length : index;
    };
    // stable: vitest's own order within each rank
    return sorted.map((spec, order) => ({ spec, order })).sort((a, b) => rank(a.spec) - rank(b.spec) || a.order - b.order).map(({ spec }) => spec);
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/globalSetup.ts'],
    // Integration tests start servers and child processes; 2 workers fit a 2-core machine.
    maxWorkers: 2,
    sequence: { sequencer: LongRunningFirst },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
