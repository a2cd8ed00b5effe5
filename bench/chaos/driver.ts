// The pipeline stand-in: changes deployment rows with plain SQL, as a pipeline would (README,
// "The database contract"). Image bumps most of the time; stops and resumes, explicit
// rollbacks and crash-looping images (the rows have auto_rollback, so those roll back) when
// the mix says so. Writes that fail (the database is down on purpose) are counted and skipped.
import { sleep, type Deployment, type World } from './harness.ts';

export interface DriverMix {
  readonly bump: number;
  readonly stop: number;
  readonly rollback: number;
  readonly failing: number;
}

/** kill9's mix; `api-faults` and the others use bumps only (a failure there must be keelson's). */
export const FULL_MIX: DriverMix = { bump: 0.6, stop: 0.15, rollback: 0.1, failing: 0.15 };
export const BUMPS_ONLY: DriverMix = { bump: 1, stop: 0, rollback: 0, failing: 0 };

export interface DriverStats {
  bumps: number;
  stops: number;
  resumes: number;
  rollbacks: number;
  failing: number;
  writeErrors: number;
}

export interface Driver {
  readonly stats: DriverStats;
  /** stops issuing changes; resolves when the loop has ended */
  stop(): Promise<void>;
}

/** A seeded PRNG (mulberry32): a run can be repeated with `--seed`. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function startDriver(world: World, options: { deployments: readonly Deployment[]; intervalMs: number; mix: DriverMix; random: () => number }): Driver {
  const stats: DriverStats = { bumps: 0, stops: 0, resumes: 0, rollbacks: 0, failing: 0, writeErrors: 0 };
  let version = 1;
  let running = true;
  const { random } = options;
  const change = async (d: Deployment) => {
    const { rows } = await world.pool.query<{ desired_status: string }>(`select desired_status from deployments where id = $1`, [d.id]);
    const desired = rows[0]?.desired_status;
    const image = (tag: string) => `registry.example/${d.project}:${tag}`;
    version++;
    if (desired === 'stopped') {
      // a stopped row comes back with a new image (a resume that also deploys)
      stats.resumes++;
      await world.pool.query(`update deployments set desired_status = 'active', image_ref = $2 where id = $1`, [d.id, image(String(version))]);
      return;
    }
    const { mix } = options;
    const r = random() * (mix.bump + mix.stop + mix.rollback + mix.failing);
    if (r < mix.bump) {
      stats.bumps++;
      await world.pool.query(`update deployments set image_ref = $2, desired_status = 'active' where id = $1`, [d.id, image(String(version))]);
    } else if (r < mix.bump + mix.stop) {
      stats.stops++;
      await world.pool.query(`update deployments set desired_status = 'stopped' where id = $1`, [d.id]);
    } else if (r < mix.bump + mix.stop + mix.rollback) {
      stats.rollbacks++;
      await world.pool.query(`update deployments set desired_status = 'rollback' where id = $1`, [d.id]);
    } else {
      stats.failing++;
      await world.pool.query(`update deployments set image_ref = $2, desired_status = 'active' where id = $1`, [d.id, image(`crashloop-${version}`)]);
    }
  };
  const loop = (async () => {
    while (running) {
      const d = options.deployments[Math.floor(random() * options.deployments.length)];
      if (d) await change(d).catch(() => stats.writeErrors++);
      await sleep(options.intervalMs * (0.5 + random()));
    }
  })();
  return {
    stats,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
