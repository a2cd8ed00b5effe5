import { parseArgs } from 'node:util';
import type { Command } from '../cli.ts';
import { FLAG_TO_ENV, loadConfig } from '../config.ts';
import { redactUrl } from '../db/database.ts';
import { DEMO } from '../demo.ts';
import { createLogger } from '../logger.ts';
import { startServer, type RunningServer } from '../server.ts';
import { createShutdown } from '../shutdown.ts';

function banner(server: RunningServer, databaseUrl: string | undefined): string {
  const lines = [
    '',
    `  keelson is running at ${server.url}`,
    `    API docs      ${server.url}/docs`,
    `    visualizer    ${server.url}/ui`,
    `    metrics       ${server.url}/metrics`,
  ];
  if (server.embeddedDatabaseUrl) lines.push(`    database      psql ${server.embeddedDatabaseUrl}   (embedded, PostgreSQL ${server.postgresVersion})`);
  else if (databaseUrl) lines.push(`    database      ${redactUrl(databaseUrl)}   (PostgreSQL ${server.postgresVersion})`);
  if (server.cluster === 'sim') {
    lines.push(`    cluster       ${server.clusterUrl} (simulated): kubectl --kubeconfig ${server.clusterKubeconfig} get deploy -A`);
  } else if (server.cluster === 'in-cluster') {
    lines.push(`    cluster       ${server.clusterUrl} (in-cluster: this pod's service account)`);
  } else {
    lines.push(`    cluster       ${server.clusterUrl} (KUBECONFIG)`);
  }
  if (server.adminToken) {
    lines.push(
      '',
      `  admin token (shown once): ${server.adminToken}`,
      '',
      `  The demo deployment ${DEMO.project}/${DEMO.environment} rolls out now. Follow it:`,
      `    curl -H "Authorization: Bearer $TOKEN" ${server.url}/api/projects/${DEMO.project}/deployments/${DEMO.environment}`,
      `    KEELSON_URL=${server.url} KEELSON_TOKEN=$TOKEN npx keelson status ${DEMO.project}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const serveCommand: Command = {
  summary: 'Run keelson: migrations, the actor runtime and the REST API (embedded PostgreSQL and cluster by default).',
  usage:
    'keelson serve [--port 8080] [--host 127.0.0.1] [--database-url <url>] [--cluster kubeconfig|in-cluster|sim] [--kubeconfig <file>]\n' +
    '              [--data-dir ./.keelson] [--tick-interval 10s] [--max-concurrent-rollouts 32] [--verify-timeout 5m]\n' +
    '              [--trust-proxy false] [--shutdown-timeout 20s] [--lease-ttl 10s] [--instance-id <pod name>]\n' +
    '              [--kube-qps 50] [--kube-burst 100] [--degraded-grace 2m]\n' +
    '              [--allow-file-repos true|false] [--sse-max-per-token 10] [--sse-max 1000] [--git-fetch-timeout 5m]\n' +
    '              [--git-max-repo-bytes 1GiB] [--retain-transitions 30d] [--retain-audit 365d] [--idempotency-ttl 24h]\n' +
    '              [--render-timeout 10s] [--render-max-heap 128MiB] [--render-max-objects 1000] [--render-max-bytes 10MiB]\n' +
    '              [--notify-horizon 24h] [--notify-concurrency 8] [--notify-timeout 10s] [--public-url <https://…>]\n' +
    '              [--namespaces ns1,ns2] [--log-level info] [--log-format json|pretty] [--no-demo]',
  run: async (argv) => {
    const options = Object.fromEntries(Object.keys(FLAG_TO_ENV).map((flag) => [flag, { type: 'string' as const }]));
    const { values } = parseArgs({ args: argv, options: { ...options, 'no-demo': { type: 'boolean' } }, strict: true });
    const { 'no-demo': noDemo, ...flags } = values as Record<string, string | undefined> & { 'no-demo'?: boolean };
    const config = loadConfig(process.env, flags);
    const log = createLogger({ level: config.logLevel, format: config.logFormat });

    // Installed before anything slow starts: as PID 1 in a container, Node would otherwise
    // ignore SIGTERM, and a start-up hung on an unreachable database must still end in time.
    const shutdown = createShutdown({ timeoutMs: config.shutdownTimeoutMs, log, exit: (code) => process.exit(code) });
    process.on('SIGTERM', () => shutdown.request('SIGTERM'));
    process.on('SIGINT', () => shutdown.request('SIGINT'));
    // Also receives unhandled rejections (Node's default mode raises them as exceptions). The
    // process state is suspect now: close as far as possible within the bound, then exit 1.
    process.on('uncaughtException', (error) => {
      process.exitCode = 1; // also when the process then ends by itself
      log.fatal({ err: error }, 'uncaught exception: shutting down');
      shutdown.request('uncaughtException', 1);
    });

    const server = await startServer({
      config,
      log,
      demo: noDemo ? false : undefined,
      // e.g. another live process with the same KEELSON_INSTANCE_ID: stop, with a non-zero status
      onFatal: (error) => {
        log.fatal({ err: error.message }, 'the runtime cannot go on: shutting down');
        shutdown.request(error.message, 70);
      },
    });
    shutdown.handle(server.close, server.forceStop);
    if (!shutdown.requested) console.log(banner(server, config.databaseUrl));
    return await shutdown.done;
  },
};
