// The sentence a drift finding becomes: a drift repair's triggered_by (history, events) or, with
// `drift: detect`, the row's drift_detected. It names every drifted object and the field paths
// that differ, bounded so a deployment of many objects cannot write an unbounded column.
import { DRIFT_MODES } from '../db/rows.ts';
import type { DriftedObject } from '../kube/kubeClient.ts';

export { DRIFT_MODES };
export type DriftMode = (typeof DRIFT_MODES)[number];

const MAX_PATHS = 5;
const MAX_OBJECTS = 10;
/** under the 4000 characters migration 0011 allows drift_detected */
const MAX_LENGTH = 1000;

export function describeDrift(drifted: readonly DriftedObject[]): string {
  const parts = drifted.slice(0, MAX_OBJECTS).map(({ ref, reason, paths }) => {
    const name = `${ref.kind} ${ref.name}`;
    if (reason === 'missing') return `${name} missing from the cluster`;
    const shown = paths.slice(0, MAX_PATHS).join(', ');
    const more = paths.length > MAX_PATHS ? ` and ${paths.length - MAX_PATHS} more` : '';
    return `${name} changed (${shown}${more})`;
  });
  if (drifted.length > MAX_OBJECTS) parts.push(`${drifted.length - MAX_OBJECTS} more object(s)`);
  const sentence = parts.join('; ');
  return sentence.length > MAX_LENGTH ? `${sentence.slice(0, MAX_LENGTH - 1)}…` : sentence;
}
