// Push webhooks are authenticated per ops repo with the secret an admin stored in
// ops_repos.webhook_secret, the way the git hosts send it; no API token is involved, so a git
// host never holds one. Pure: no I/O.
// - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>`.
// - GitLab: `X-Gitlab-Token: <the secret>`.
// Comparisons are constant-time (timingSafeEqual over equal-length digests), so response timing
// says nothing about how much of a guess was right.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type WebhookSource = 'github' | 'gitlab';

export type WebhookVerdict = { readonly ok: true; readonly source: WebhookSource } | { readonly ok: false; readonly reason: string };

const GITHUB_SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

export function verifyWebhook(headers: { get(name: string): string | undefined }, rawBody: Buffer, secret: string): WebhookVerdict {
  const signature = headers.get('x-hub-signature-256');
  if (signature !== undefined) {
    const match = GITHUB_SIGNATURE.exec(signature.trim());
    if (!match) return { ok: false, reason: 'X-Hub-Signature-256 is not of the form sha256=<64 hex digits>' };
    const expected = createHmac('sha256', secret).update(rawBody).digest();
    return timingSafeEqual(expected, Buffer.from(match[1] as string, 'hex'))
      ? { ok: true, source: 'github' }
      : { ok: false, reason: 'X-Hub-Signature-256 does not match the body signed with this repository\'s webhook secret' };
  }
  const token = headers.get('x-gitlab-token');
  if (token !== undefined) {
    const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
    return timingSafeEqual(digest(token), digest(secret))
      ? { ok: true, source: 'gitlab' }
      : { ok: false, reason: 'X-Gitlab-Token does not match this repository\'s webhook secret' };
  }
  return { ok: false, reason: 'the request carries neither X-Hub-Signature-256 (GitHub) nor X-Gitlab-Token (GitLab)' };
}

/**
 * What the delivery asks for: `ping` (GitHub's hello), `ignore` (not a push, or a push to another
 * branch), or `sync`. The payload is read only after the signature was verified.
 */
export function webhookIntent(
  source: WebhookSource,
  headers: { get(name: string): string | undefined },
  rawBody: Buffer,
  branch: string,
): { readonly action: 'ping' | 'ignore' | 'sync'; readonly reason: string } {
  const event = source === 'github' ? headers.get('x-github-event') : headers.get('x-gitlab-event');
  if (source === 'github' && event === 'ping') return { action: 'ping', reason: 'GitHub ping' };
  if (event !== undefined && event !== (source === 'github' ? 'push' : 'Push Hook')) return { action: 'ignore', reason: `the ${event} event is not a push` };
  const ref = pushedRef(rawBody);
  if (ref !== undefined && ref !== `refs/heads/${branch}`) return { action: 'ignore', reason: `the push was to ${ref}, not to refs/heads/${branch}` };
  return { action: 'sync', reason: ref === undefined ? 'a push (no ref in the payload)' : `a push to ${ref}` };
}

/** `ref` of a JSON payload, or of GitHub's form-encoded `payload=`; undefined when unreadable. */
function pushedRef(rawBody: Buffer): string | undefined {
  const text = rawBody.toString('utf8');
  let payload: unknown;
  try {
    payload = JSON.parse(text.startsWith('payload=') ? (new URLSearchParams(text).get('payload') ?? '') : text);
  } catch {
    return undefined;
  }
  const ref = (payload as { ref?: unknown } | null)?.ref;
  return typeof ref === 'string' ? ref : undefined;
}
