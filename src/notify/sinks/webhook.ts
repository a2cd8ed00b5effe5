// webhook: a CloudEvents 1.0 event in structured mode (the whole event is the JSON body),
// signed with HMAC-SHA256 over the raw body (docs/notifications.md, "Verifying a webhook").
import { jsonRequest, type Sink, type SinkContext, type StoredEvent } from './sink.ts';

export function cloudEvent(event: StoredEvent, context: SinkContext): Record<string, unknown> {
  const path = `/api/projects/${event.project}/deployments/${event.environment}`;
  return {
    specversion: '1.0',
    id: event.id,
    source: context.publicUrl ? `${context.publicUrl}${path}` : path,
    type: event.type,
    subject: `${event.project}/${event.environment}`,
    time: event.occurredAt,
    datacontenttype: 'application/json',
    data: event.data,
  };
}

export const webhookSink: Sink = {
  kind: 'webhook',
  build: (event, settings, context) =>
    jsonRequest(event, settings, cloudEvent(event, context), 'application/cloudevents+json; charset=utf-8'),
};
