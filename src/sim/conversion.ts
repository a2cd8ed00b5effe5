// Kinds served from another kind's storage (ResourceType.storage): the conversions between the
// stored form and the served one, and the field selector labels each side uses. Only
// events.k8s.io/v1 Event is such a view today (eventsV1.ts); the store, the watch fan-out and the
// recorder see only the stored form, so resourceVersions and watches are shared by construction.
import { coreEventField, coreToEventsV1, EVENTS_V1_FIELD_LABELS, eventsV1ToCore } from './eventsV1.ts';
import type { ResourceType } from './resources.ts';
import type { FieldRequirement } from './selectors.ts';
import type { KObject } from './store.ts';

function isEventsView(type: ResourceType): boolean {
  return type.storage !== undefined && type.kind === 'Event';
}

/** A stored object as `type` serves it (itself for a kind with its own storage). */
export function toServed(type: ResourceType, stored: KObject): KObject {
  if (!type.storage) return stored;
  if (isEventsView(type)) return coreToEventsV1(stored);
  throw new Error(`simulator: no conversion from ${type.storage.kind} to ${type.group}/${type.kind}`);
}

/** An object in `type`'s served form as its storage keeps it. */
export function toStored(type: ResourceType, served: KObject): KObject {
  if (!type.storage) return served;
  if (isEventsView(type)) return eventsV1ToCore(served);
  throw new Error(`simulator: no conversion from ${type.group}/${type.kind} to ${type.storage.kind}`);
}

/**
 * What the server does to a request body: decoding it into the version's typed struct drops
 * unknown fields and writes zero values (`null` times, `{}` structs) as that version serialises
 * them. Only views are normalised so (other kinds are stored as sent).
 */
export function decodeServed(type: ResourceType, served: KObject): KObject {
  return type.storage ? toServed(type, toStored(type, served)) : served;
}

/** Field selector requirements in `type`'s labels, relabelled for its storage (upstream's field label conversion). */
export function storedFieldRequirements(type: ResourceType, requirements: FieldRequirement[]): FieldRequirement[] {
  if (!isEventsView(type)) return requirements;
  return requirements.map((r) => ({ ...r, field: EVENTS_V1_FIELD_LABELS[r.field] ?? r.field }));
}

/** A stored object's value for a field selector label (by default the JSON path the label names). */
export function storedFieldValue(type: ResourceType): ((o: KObject, label: string) => unknown) | undefined {
  return type.kind === 'Event' && !type.crd ? coreEventField : undefined;
}
