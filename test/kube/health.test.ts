// Table-driven from YAML fixtures, one per situation (after gitops-engine's pkg/health/testdata):
// each fixture holds the object, the expected status and a substring of the expected message.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { assessHealth, healthSeverity } from '../../src/kube/health.ts';
import type { KubeObject } from '../../src/kube/types.ts';

const fixtureSchema = z.object({
  now: z.string().optional(),
  expected: z.object({
    status: z.enum(['Current', 'InProgress', 'Failed', 'Terminating', 'NotFound', 'Unknown']),
    message: z.string().min(1),
  }),
  object: z.looseObject({ apiVersion: z.string(), kind: z.string(), metadata: z.looseObject({ name: z.string() }) }),
});

const dir = join(import.meta.dirname, 'fixtures', 'health');
const fixtures = readdirSync(dir)
  .filter((file) => file.endsWith('.yaml'))
  .sort()
  .map((file) => ({ file, ...fixtureSchema.parse(parse(readFileSync(join(dir, file), 'utf8'))) }));

describe('assessHealth', () => {
  it('has fixtures to run', () => {
    expect(fixtures.length).toBeGreaterThan(30);
  });

  it.each(fixtures)('$file', ({ object, expected, now }) => {
    const health = assessHealth(object as KubeObject, now ? { now: new Date(now) } : {});
    expect(health.status).toBe(expected.status);
    expect(health.message).toContain(expected.message);
    // Messages are whole sentences.
    expect(health.message).toMatch(/^[A-Z].*[.)]$/);
  });

  it('reports an absent object as NotFound', () => {
    expect(assessHealth(undefined).status).toBe('NotFound');
  });

  it('reports an object without kind as Unknown', () => {
    expect(assessHealth({ metadata: { name: 'x' } } as unknown as KubeObject).status).toBe('Unknown');
  });

  it('orders statuses so that Failed is the worst and Current the best', () => {
    const sorted = Object.entries(healthSeverity).sort((a, b) => a[1] - b[1]).map(([status]) => status);
    expect(sorted[0]).toBe('Current');
    expect(sorted.at(-1)).toBe('Failed');
  });
});
