import { registrySink } from './registry.ts';
import type { Sink, SinkKind } from './sink.ts';
import { slackSink } from './slack.ts';
import { webhookSink } from './webhook.ts';

export const SINKS: Readonly<Record<SinkKind, Sink>> = { webhook: webhookSink, slack: slackSink, registry: registrySink };
