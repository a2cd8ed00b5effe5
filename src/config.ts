// Configuration comes from the environment, with CLI flags taking precedence. Every value is
// checked here, once; a bad value stops start-up with the variable's name and what is accepted.
import path from 'node:path';
import { z } from 'zod';
import { formatBytes, parseByteSize } from './bytes.ts';
import { ConfigError } from './errors.ts';
import type { RenderLimits } from './render/renderer.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Where keelson deploys to: a kubeconfig file, its own pod's cluster, or the embedded simulator. */
export const CLUSTER_KINDS = ['kubeconfig', 'in-cluster', 'sim'] as const;
export type ClusterKind = (typeof CLUSTER_KINDS)[number];
/** `external`: DATABASE_URL; `embedded`: a PostgreSQL keelson starts under KEELSON_DATA_DIR. */
export type DatabaseKind = 'external' | 'embedded';

/** "250ms", "10s", "5m", "1h", "30d" or a bare number of seconds → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit] ?? 1000;
  return Math.round(value * factor);
}

const duration = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms < min || ms > max) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as 500ms, 10s or 5m, between ${min} ms and ${max / 1000} s; got "${text}"`,
      });
      return z.NEVER;
    }
    return ms;
  });

const MiB = 1024 ** 2;

const byteSize = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const bytes = parseByteSize(text);
    if (bytes === undefined || bytes < min || bytes > max) {
      ctx.addIssue({ code: 'custom', message: `expected a size such as 512KiB, 10MiB or 1GiB, between ${formatBytes(min)} and ${formatBytes(max)}; got "${text}"` });
      return z.NEVER;
    }
    return bytes;
  });

const boolean = () =>
  z.enum(['true', 'false'], { error: 'expected true or false' }).transform((text) => text === 'true');

const integer = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
      ctx.addIssue({ code: 'custom', message: `expected an integer from ${min} to ${max}; got "${text}"` });
      return z.NEVER;
    }
    return value;
  });

const positiveNumber = (max: number) =>
  z.string().transform((text, ctx) => {
    const value = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(value > 0) || value > max) {
      ctx.addIssue({ code: 'custom', message: `expected a number above 0 and at most ${max}; got "${text}"` });
      return z.NEVER;
    }
    return value;
  });

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** "shop-staging, shop-prod" → the namespaces, each a DNS-1123 label, deduplicated, in order. */
const namespaceList = () =>
  z.string().transform((text, ctx) => {
    const names = text.split(',').map((part) => part.trim());
    const bad = names.filter((name) => !DNS_LABEL.test(name));
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a comma-separated list of namespace names (DNS labels: a-z, 0-9 and "-", at most 63, starting and ending with a letter or digit); ${bad.map((name) => `"${name}"`).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not`,
      });
      return z.NEVER;
    }
    return [...new Set(names)];
  });

const EnvSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'expected a PostgreSQL URL such as postgresql://user:pass@host:5432/db')
    .optional(),
  KEELSON_DATA_DIR: z.string().min(1, 'expected a directory path').default('./.keelson'),
  PORT: integer(0, 65535).default(8080),
  KEELSON_HOST: z.string().min(1).default('127.0.0.1'),
  KUBECONFIG: z.string().min(1, 'expected the path of a kubeconfig file').optional(),
  KEELSON_LOG_LEVEL: z
    .enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  KEELSON_LOG_FORMAT: z.enum(['json', 'pretty'], { error: 'expected json or pretty' }).optional(),
  KEELSON_TICK_INTERVAL: duration(50, 3_600_000).default(10_000),
  KEELSON_MAX_CONCURRENT_ROLLOUTS: integer(1, 10_000).default(32),
  KEELSON_VERIFY_TIMEOUT: duration(1000, 86_400_000).default(300_000),
  // how long a healthy release may stay degraded before auto_rollback rolls it back
  KEELSON_DEGRADED_GRACE: duration(1000, 86_400_000).default(120_000),
  // client-side rate limit of Kubernetes API requests (Flux's controllers use the same defaults)
  KEELSON_KUBE_QPS: positiveNumber(10_000).default(50),
  KEELSON_KUBE_BURST: integer(1, 100_000).default(100),
  // express's `trust proxy`: which hops may set X-Forwarded-For (audit rows record the client)
  KEELSON_TRUST_PROXY: z
    .string()
    .regex(
      /^(false|true|\d+|[A-Za-z0-9.:/]+(\s*,\s*[A-Za-z0-9.:/]+)*)$/,
      'expected false, true, a number of proxy hops, or addresses/subnets such as loopback or 10.0.0.0/8 (comma-separated)',
    )
    .default('false'),
  KEELSON_CLUSTER: z.enum(CLUSTER_KINDS, { error: `expected one of ${CLUSTER_KINDS.join(', ')}` }).optional(),
  // namespaced mode: keelson's rights are bound in these namespaces only (deploy/kustomize/components/namespaced)
  KEELSON_NAMESPACES: namespaceList().optional(),
  KEELSON_SHUTDOWN_TIMEOUT: duration(1000, 600_000).default(20_000),
  // How long a deployment's lease lives without a heartbeat: a process that cannot renew stops
  // its actors (self-fences) before this, and others take over after it (docs/operations.md).
  KEELSON_LEASE_TTL: duration(1000, 600_000).default(10_000),
  // A stable identity (the pod name) lets a restarted process reclaim its own leases at once.
  KEELSON_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'expected 1-253 letters, digits, ".", "_" or "-" (e.g. the pod name)')
    .optional(),
  // Set by Kubernetes in every pod (not keelson's own variables): they mean "inside a pod".
  KUBERNETES_SERVICE_HOST: z.string().optional(),
  KUBERNETES_SERVICE_PORT: z.string().optional(),
  // tenancy (docs/security.md)
  KEELSON_ALLOW_FILE_REPOS: boolean().optional(),
  KEELSON_SSE_MAX_PER_TOKEN: integer(1, 10_000).default(10),
  KEELSON_SSE_MAX: integer(1, 100_000).default(1000),
  KEELSON_GIT_FETCH_TIMEOUT: duration(1000, 86_400_000).default(300_000),
  KEELSON_GIT_MAX_REPO_BYTES: byteSize(MiB, 1024 ** 4).default(1024 ** 3),
  KEELSON_RETAIN_TRANSITIONS: duration(3_600_000, 3650 * 86_400_000).default(30 * 86_400_000),
  KEELSON_RETAIN_AUDIT: duration(3_600_000, 3650 * 86_400_000).default(365 * 86_400_000),
  KEELSON_IDEMPOTENCY_TTL: duration(60_000, 30 * 86_400_000).default(86_400_000),
  KEELSON_RENDER_TIMEOUT: duration(100, 600_000).default(10_000),
  KEELSON_RENDER_MAX_HEAP: byteSize(16 * MiB, 16 * 1024 * MiB).default(128 * MiB),
  KEELSON_RENDER_MAX_OBJECTS: integer(1, 100_000).default(1_000),
  KEELSON_RENDER_MAX_BYTES: byteSize(64 * 1024, 1024 * MiB).default(10 * MiB),
  // notifications (docs/notifications.md)
  KEELSON_NOTIFY_HORIZON: duration(1000, 30 * 86_400_000).default(86_400_000),
  KEELSON_NOTIFY_CONCURRENCY: integer(1, 1000).default(8),
  KEELSON_NOTIFY_TIMEOUT: duration(100, 300_000).default(10_000),
  // links in Slack messages and the CloudEvents source; no trailing slash needed
  KEELSON_PUBLIC_URL: z
    .string()
    .regex(/^https?:\/\/[^\s/?#@]+(\/[^\s?#]*)?$/, 'expected an http(s) URL such as https://keelson.example.com, without query or credentials')
    .optional(),
});

export type Config = {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly port: number;
  readonly host: string;
  readonly kubeconfig: string | undefined;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly logFormat: 'json' | 'pretty';
  readonly tickIntervalMs: number;
  readonly maxConcurrentRollouts: number;
  readonly verifyTimeoutMs: number;
  readonly degradedGraceMs: number;
  readonly kubeQps: number;
  readonly kubeBurst: number;
  readonly trustProxy: boolean | number | string;
  readonly cluster: ClusterKind;
  readonly database: DatabaseKind;
  /** Namespaced mode: the only namespaces keelson watches and deploys into; undefined: the whole cluster. */
  readonly namespaces: readonly string[] | undefined;
  /** SIGTERM/SIGINT → exit within this, even with the database or the cluster unreachable */
  readonly shutdownTimeoutMs: number;
  /** a lease's lifetime without renewal; heartbeats run every quarter of it */
  readonly leaseTtlMs: number;
  /** undefined: a random id per process (no lease is recognised after a restart) */
  readonly instanceId: string | undefined;
  /** undefined: unset, which `serve` reads as "only for the zero-setup demo". */
  readonly allowFileRepos: boolean | undefined;
  readonly sseMaxPerToken: number;
  readonly sseMax: number;
  readonly gitFetchTimeoutMs: number;
  readonly gitMaxRepoBytes: number;
  readonly retainTransitionsMs: number;
  readonly retainAuditMs: number;
  readonly idempotencyTtlMs: number;
  readonly renderLimits: RenderLimits;
  /** how long after an event its deliveries are still retried (then marked dead) */
  readonly notifyHorizonMs: number;
  readonly notifyConcurrency: number;
  readonly notifyTimeoutMs: number;
  /** where people reach keelson (links in notifications); undefined: no links */
  readonly publicUrl: string | undefined;
};

/** CLI flag → environment variable it overrides. */
export const FLAG_TO_ENV = {
  'database-url': 'DATABASE_URL',
  'data-dir': 'KEELSON_DATA_DIR',
  port: 'PORT',
  host: 'KEELSON_HOST',
  kubeconfig: 'KUBECONFIG',
  'log-level': 'KEELSON_LOG_LEVEL',
  'log-format': 'KEELSON_LOG_FORMAT',
  'tick-interval': 'KEELSON_TICK_INTERVAL',
  'max-concurrent-rollouts': 'KEELSON_MAX_CONCURRENT_ROLLOUTS',
  'verify-timeout': 'KEELSON_VERIFY_TIMEOUT',
  'degraded-grace': 'KEELSON_DEGRADED_GRACE',
  'kube-qps': 'KEELSON_KUBE_QPS',
  'kube-burst': 'KEELSON_KUBE_BURST',
  'trust-proxy': 'KEELSON_TRUST_PROXY',
  cluster: 'KEELSON_CLUSTER',
  namespaces: 'KEELSON_NAMESPACES',
  'shutdown-timeout': 'KEELSON_SHUTDOWN_TIMEOUT',
  'instance-id': 'KEELSON_INSTANCE_ID',
  'lease-ttl': 'KEELSON_LEASE_TTL',
  'allow-file-repos': 'KEELSON_ALLOW_FILE_REPOS',
  'sse-max-per-token': 'KEELSON_SSE_MAX_PER_TOKEN',
  'sse-max': 'KEELSON_SSE_MAX',
  'git-fetch-timeout': 'KEELSON_GIT_FETCH_TIMEOUT',
  'git-max-repo-bytes': 'KEELSON_GIT_MAX_REPO_BYTES',
  'retain-transitions': 'KEELSON_RETAIN_TRANSITIONS',
  'retain-audit': 'KEELSON_RETAIN_AUDIT',
  'idempotency-ttl': 'KEELSON_IDEMPOTENCY_TTL',
  'render-timeout': 'KEELSON_RENDER_TIMEOUT',
  'render-max-heap': 'KEELSON_RENDER_MAX_HEAP',
  'render-max-objects': 'KEELSON_RENDER_MAX_OBJECTS',
  'render-max-bytes': 'KEELSON_RENDER_MAX_BYTES',
  'notify-horizon': 'KEELSON_NOTIFY_HORIZON',
  'notify-concurrency': 'KEELSON_NOTIFY_CONCURRENCY',
  'notify-timeout': 'KEELSON_NOTIFY_TIMEOUT',
  'public-url': 'KEELSON_PUBLIC_URL',
} as const;

export interface TargetInput {
  readonly cluster: ClusterKind | undefined;
  readonly kubeconfig: string | undefined;
  readonly databaseUrl: string | undefined;
  readonly serviceHost: string | undefined;
  readonly servicePort: string | undefined;
}

/**
 * Which cluster and database keelson uses. Named explicitly, or by default: KUBECONFIG →
 * kubeconfig; inside a pod (KUBERNETES_SERVICE_HOST) → in-cluster; else the simulator, the
 * zero-setup mode. Inside a pod keelson never falls back to the simulator or to an embedded
 * PostgreSQL: a pod's filesystem is lost on every restart, and with it every deployment's
 * history, so a missing DATABASE_URL there is refused instead of quietly "working".
 */
export function chooseTargets(input: TargetInput): { cluster: ClusterKind; database: DatabaseKind } {
  const inPod = input.serviceHost !== undefined;
  const problems: string[] = [];
  const cluster = input.cluster ?? (input.kubeconfig ? 'kubeconfig' : inPod ? 'in-cluster' : 'sim');
  if (cluster === 'kubeconfig' && !input.kubeconfig) {
    problems.push(
      '  KEELSON_CLUSTER / --cluster: kubeconfig needs KUBECONFIG / --kubeconfig naming the file (keelson reads ~/.kube/config only when named).',
    );
  }
  if (cluster === 'in-cluster' && (!input.serviceHost || !input.servicePort)) {
    problems.push(
      '  KEELSON_CLUSTER / --cluster: in-cluster works only inside a Kubernetes pod, where KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are set; ' +
        'outside a pod use --cluster kubeconfig with KUBECONFIG.',
    );
  }
  if (!input.databaseUrl && inPod) {
    problems.push(
      '  DATABASE_URL / --database-url: unset inside a Kubernetes pod (KUBERNETES_SERVICE_HOST is set). keelson does not start an embedded PostgreSQL ' +
        "in a pod: its data would be lost whenever the pod restarts. Set DATABASE_URL to a PostgreSQL ≥ 14, e.g. from a Secret (docs/install.md).",
    );
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  return { cluster, database: input.databaseUrl ? 'external' : 'embedded' };
}

function parseTrustProxy(text: string): boolean | number | string {
  if (text === 'false') return false;
  if (text === 'true') return true;
  return /^\d+$/.test(text) ? Number(text) : text;
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  flags: Partial<Record<keyof typeof FLAG_TO_ENV, string>> = {},
  isTty: boolean = process.stdout.isTTY === true,
): Config {
  const source: Record<string, string | undefined> = {};
  for (const key of Object.keys(EnvSchema.shape)) {
    const value = env[key];
    // An empty variable means "unset", as in most shells' `FOO= keelson ...`.
    source[key] = value === '' ? undefined : value;
  }
  for (const [flag, key] of Object.entries(FLAG_TO_ENV)) {
    const value = flags[flag as keyof typeof FLAG_TO_ENV];
    if (value !== undefined) source[key] = value;
  }
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const flag = Object.entries(FLAG_TO_ENV).find(([, key]) => key === name)?.[0];
      const shown = name === 'DATABASE_URL' ? '' : ` (got "${source[name]}")`;
      const message = issue.message.includes('got "') ? issue.message : `${issue.message}${shown}`;
      return `  ${name}${flag ? ` / --${flag}` : ''}: ${message}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const targets = chooseTargets({
    cluster: e.KEELSON_CLUSTER,
    kubeconfig: e.KUBECONFIG,
    databaseUrl: e.DATABASE_URL,
    serviceHost: e.KUBERNETES_SERVICE_HOST,
    servicePort: e.KUBERNETES_SERVICE_PORT,
  });
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: path.resolve(e.KEELSON_DATA_DIR),
    port: e.PORT,
    host: e.KEELSON_HOST,
    kubeconfig: e.KUBECONFIG,
    logLevel: e.KEELSON_LOG_LEVEL,
    logFormat: e.KEELSON_LOG_FORMAT ?? (isTty ? 'pretty' : 'json'),
    tickIntervalMs: e.KEELSON_TICK_INTERVAL,
    maxConcurrentRollouts: e.KEELSON_MAX_CONCURRENT_ROLLOUTS,
    verifyTimeoutMs: e.KEELSON_VERIFY_TIMEOUT,
    degradedGraceMs: e.KEELSON_DEGRADED_GRACE,
    kubeQps: e.KEELSON_KUBE_QPS,
    kubeBurst: e.KEELSON_KUBE_BURST,
    trustProxy: parseTrustProxy(e.KEELSON_TRUST_PROXY),
    ...targets,
    namespaces: e.KEELSON_NAMESPACES,
    shutdownTimeoutMs: e.KEELSON_SHUTDOWN_TIMEOUT,
    instanceId: e.KEELSON_INSTANCE_ID,
    leaseTtlMs: e.KEELSON_LEASE_TTL,
    allowFileRepos: e.KEELSON_ALLOW_FILE_REPOS,
    sseMaxPerToken: e.KEELSON_SSE_MAX_PER_TOKEN,
    sseMax: e.KEELSON_SSE_MAX,
    gitFetchTimeoutMs: e.KEELSON_GIT_FETCH_TIMEOUT,
    gitMaxRepoBytes: e.KEELSON_GIT_MAX_REPO_BYTES,
    retainTransitionsMs: e.KEELSON_RETAIN_TRANSITIONS,
    retainAuditMs: e.KEELSON_RETAIN_AUDIT,
    idempotencyTtlMs: e.KEELSON_IDEMPOTENCY_TTL,
    notifyHorizonMs: e.KEELSON_NOTIFY_HORIZON,
    notifyConcurrency: e.KEELSON_NOTIFY_CONCURRENCY,
    notifyTimeoutMs: e.KEELSON_NOTIFY_TIMEOUT,
    publicUrl: e.KEELSON_PUBLIC_URL?.replace(/\/+$/, ''),
    renderLimits: {
      timeoutMs: e.KEELSON_RENDER_TIMEOUT,
      maxHeapBytes: e.KEELSON_RENDER_MAX_HEAP,
      maxObjects: e.KEELSON_RENDER_MAX_OBJECTS,
      maxBytes: e.KEELSON_RENDER_MAX_BYTES,
    },
  };
}
