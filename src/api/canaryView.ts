// The canary in flight, as the deployment's detail serves it (and the visualizer draws it): read
// from the persisted snapshot's context (machine version 5: `work.strategy`, `work.canary`) — the
// steps with where the canary is, and the split last asked for. Pure; anything unexpected in an
// old or foreign snapshot reads as "no canary".
import { z } from 'zod';

export const CanaryStepView = z.object({
  step: z.string().meta({ description: '`10 %`, `pause 30 s` or `wait healthy`.' }),
  status: z.enum(['done', 'current', 'pending']),
});

export const CanaryView = z.object({
  revision: z.string().meta({ description: 'The new revision.' }),
  stable: z.string().nullable().meta({ description: 'The revision it shifts traffic from (null: a first canary).' }),
  phase: z.enum(['warming', 'steps', 'promoting', 'aborting']),
  steps: z.array(CanaryStepView),
  split: z.array(z.object({ revision: z.string(), weight_bps: z.number().int() })).nullable().meta({ description: 'The split last asked for, in basis points.' }),
  paused: z.boolean(),
  pause_until: z.string().nullable(),
  abort_reason: z.string().nullable(),
});
export type CanaryView = z.infer<typeof CanaryView>;

const Step = z.union([
  z.object({ setWeight: z.number() }),
  z.object({ pauseMs: z.number() }),
  z.object({ waitHealthy: z.literal(true) }),
]);

const Persisted = z.object({
  value: z.unknown(),
  context: z.object({
    work: z
      .object({
        strategy: z.object({ kind: z.literal('canary'), steps: z.array(Step) }).nullable().optional(),
        canary: z
          .object({
            revision: z.string(),
            stable: z.object({ name: z.string() }).nullable(),
            step: z.number().int(),
            split: z.array(z.object({ revision: z.string(), weightBps: z.number().int() })).nullable(),
            pauseUntil: z.number().nullable(),
            paused: z.boolean(),
            abortReason: z.string().nullable(),
          })
          .nullable()
          .optional(),
      })
      .nullable()
      .optional(),
  }),
});

function label(step: z.infer<typeof Step>): string {
  if ('setWeight' in step) return `${step.setWeight / 100} %`;
  if ('pauseMs' in step) return `pause ${step.pauseMs % 1000 === 0 ? `${step.pauseMs / 1000} s` : `${step.pauseMs} ms`}`;
  return 'wait healthy';
}

/** The canary of a persisted snapshot, or null when none runs. */
export function canaryView(snapshot: unknown): CanaryView | null {
  const parsed = Persisted.safeParse(snapshot);
  if (!parsed.success) return null;
  const work = parsed.data.context.work;
  const canary = work?.canary;
  const strategy = work?.strategy;
  if (!canary || !strategy) return null;
  const value = JSON.stringify(parsed.data.value);
  const phase = value.includes('"aborting"') ? 'aborting' : value.includes('"promoting"') ? 'promoting' : value.includes('"steps"') ? 'steps' : 'warming';
  return {
    revision: canary.revision,
    stable: canary.stable?.name ?? null,
    phase,
    steps: strategy.steps.map((step, i) => ({
      step: label(step),
      // a step is done once the canary moved past it (promoting: all of them)
      status: phase === 'promoting' || i < canary.step ? 'done' : i === canary.step && phase === 'steps' ? 'current' : 'pending',
    })),
    split: canary.split?.map((e) => ({ revision: e.revision, weight_bps: e.weightBps })) ?? null,
    paused: canary.paused,
    pause_until: canary.pauseUntil === null ? null : new Date(canary.pauseUntil).toISOString(),
    abort_reason: canary.abortReason,
  };
}
