// slack: a Slack incoming-webhook message anyone in the channel can read at a glance.
import { HEALTH_EVENT_KIND } from '../events.ts';
import { jsonRequest, visualizerLink, type Sink, type StoredEvent, type SinkContext } from './sink.ts';

const ICONS: Record<string, string> = { started: ':arrow_forward:', succeeded: ':white_check_mark:', failed: ':x:', superseded: ':fast_forward:' };

/** Slack mrkdwn treats &, < and > as markup: escape whatever came from a row. */
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A health change: one line, what runs and why (the degraded sentence), no action facts. */
function healthText(event: StoredEvent, context: SinkContext): string {
  const { data } = event;
  const where = `${escape(event.project)}/${escape(event.environment)}`;
  const image = data.image_ref ? ` (image \`${escape(data.image_ref)}\`)` : '';
  const line =
    data.outcome === 'degraded'
      ? `:warning: *degraded*: ${where} — ${escape((data.error ?? 'unhealthy').slice(0, 500))}`
      : `:white_check_mark: *recovered*: ${where}${image}`;
  const link = visualizerLink(event, context);
  return link ? `${line}\n<${link}|Open in keelson>` : line;
}

export function slackText(event: StoredEvent, context: SinkContext): string {
  const { data } = event;
  if (event.type.startsWith(`${HEALTH_EVENT_KIND}.`)) return healthText(event, context);
  const [kind, outcome = ''] = event.type.split('.');
  const what = `${data.automatic ? 'auto-' : ''}${kind} ${outcome}`;
  const lines = [`${ICONS[outcome] ?? ':information_source:'} *${escape(what)}*: ${escape(event.project)}/${escape(event.environment)}`];
  const facts = [
    data.image_ref ? `image \`${escape(data.image_ref)}\`` : null,
    data.sha ? `commit \`${escape(data.sha.slice(0, 12))}\`` : null,
    data.duration_ms !== null ? `took ${seconds(data.duration_ms)}` : null,
  ].filter((fact) => fact !== null);
  if (facts.length > 0) lines.push(facts.join(' · '));
  if (data.error) lines.push(`> ${escape(data.error.slice(0, 500))}`);
  const link = visualizerLink(event, context);
  if (link) lines.push(`<${link}|Open in keelson>`);
  return lines.join('\n');
}

export const slackSink: Sink = {
  kind: 'slack',
  build: (event, settings, context) => jsonRequest(event, settings, { text: slackText(event, context) }),
};
