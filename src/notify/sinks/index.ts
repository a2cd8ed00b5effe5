import { registrySink } from './registry.ts';
import type { HttpSinkKind, Sink } from './sink.ts';
import { slackSink } from './slack.ts';
import { webhookSink } from './webhook.ts';

/** The HTTP sinks; `kubernetes-events` is delivered by kubernetesEvents.ts (wired by serve). */
export const SINKS: Readonly<Record<HttpSinkKind, Sink>> = { webhook: webhookSink, slack: slackSink, registry: registrySink };
