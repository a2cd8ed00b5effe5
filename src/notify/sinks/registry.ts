// registry: tells a service registry what version runs where. A succeeded deploy or rollback
// (auto-rollbacks included) registers; a succeeded teardown deregisters ({name, environment,
// deregister: true}); the fan-out sends it nothing else.
import { jsonRequest, type Sink, type StoredEvent } from './sink.ts';

/** The event types a registry sink receives (the SQL fan-out uses the same list). */
export const REGISTRY_EVENT_TYPES = ['deploy.succeeded', 'rollback.succeeded', 'teardown.succeeded'] as const;

/** `reg.example:5000/shop:1.4.2@sha256:…` → `1.4.2`; no tag → the digest, or `latest`. */
export function imageVersion(imageRef: string): string {
  const [name = '', digest] = imageRef.split('@');
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > lastSlash) return name.slice(colon + 1);
  return digest ?? 'latest';
}

export function registryBody(event: StoredEvent): Record<string, unknown> | null {
  if (!(REGISTRY_EVENT_TYPES as readonly string[]).includes(event.type)) return null;
  if (event.type === 'teardown.succeeded') return { name: event.project, environment: event.environment, deregister: true };
  if (!event.data.image_ref) return null;
  const namespace = event.data.namespace ?? `${event.project}-${event.environment}`;
  return {
    name: event.project,
    version: imageVersion(event.data.image_ref),
    environment: event.environment,
    // the Service the built-in template renders (named after the project, in its namespace)
    endpoint: `http://${event.project}.${namespace}.svc.cluster.local`,
    rollback: event.type === 'rollback.succeeded',
  };
}

export const registrySink: Sink = {
  kind: 'registry',
  build: (event, settings, context) => {
    void context;
    const body = registryBody(event);
    return body ? jsonRequest(event, settings, body) : null;
  },
};
