// Pure arithmetic of traffic splits on Kubernetes: basis points → HTTPRoute backend weights and
// back (exact), basis points → replica counts and back (approximate). Table-tested in
// test/targets/kubernetesSplit.test.ts.
import { TOTAL_BPS, type TrafficSplitEntry } from '../contract.ts';

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * HTTPRoute weights for a split: the basis points divided by their greatest common divisor
 * (90 % / 10 % → 9 and 1). Gateway API weights are relative, so this is lossless: reading back
 * weight × 10,000 / Σ weights gives the basis points again. Zero stays zero (no traffic).
 */
export function routeWeights(entries: readonly TrafficSplitEntry[]): number[] {
  const divisor = entries.reduce((g, entry) => gcd(g, entry.weightBps), 0) || 1;
  return entries.map((entry) => entry.weightBps / divisor);
}

/**
 * Splits `total` into whole parts proportional to `weights` by largest remainder: each part is
 * rounded down, and what is left goes one by one to the largest fractions (earlier entries win
 * ties). The parts sum to `total`.
 */
export function apportion(weights: readonly number[], total: number): number[] {
  const sum = weights.reduce((s, w) => s + w, 0);
  if (sum === 0) return weights.map(() => 0);
  const exact = weights.map((w) => (w * total) / sum);
  const parts = exact.map(Math.floor);
  let left = total - parts.reduce((s, p) => s + p, 0);
  const order = exact.map((value, index) => ({ index, fraction: value - Math.floor(value) })).sort((a, b) => b.fraction - a.fraction || a.index - b.index);
  for (const { index } of order) {
    if (left <= 0) break;
    parts[index] = (parts[index] ?? 0) + 1;
    left -= 1;
  }
  return parts;
}

/**
 * Replica counts for a split over a deployment of `total` replicas (approximate): the largest
 * remainder apportionment of `total` by basis points, then every revision with any weight gets
 * at least one replica — on top of the others, so a 1 % canary beside 3 stable replicas runs
 * 3 + 1 pods and receives about a quarter of the requests, not 1 %. The share a revision gets
 * is its ready pods over all ready pods behind the Service.
 */
export function replicaCounts(entries: readonly TrafficSplitEntry[], total: number): number[] {
  // A deployment sized 0 (stopped) stays at 0: nothing serves, whatever the weights.
  if (total <= 0) return entries.map(() => 0);
  return apportion(
    entries.map((entry) => entry.weightBps),
    total,
  ).map((count, i) => ((entries[i]?.weightBps ?? 0) > 0 ? Math.max(1, count) : count));
}

/**
 * Basis points from relative amounts (route weights or replica counts), rounded by largest
 * remainder to sum to exactly 10,000. Exact for weights keelson wrote (`routeWeights`). Null
 * when everything is zero: nothing is routed.
 */
export function splitFromAmounts(amounts: ReadonlyArray<{ revision: string; amount: number }>): TrafficSplitEntry[] | null {
  if (amounts.reduce((s, a) => s + a.amount, 0) <= 0) return null;
  const bps = apportion(
    amounts.map((a) => a.amount),
    TOTAL_BPS,
  );
  return amounts.map((a, i) => ({ revision: a.revision, weightBps: bps[i] ?? 0 }));
}
