import { parseArgs } from 'node:util';
import type { Command } from '../cli.ts';
import { FLAG_TO_ENV, loadConfig } from '../config.ts';
import { DEMO } from '../demo.ts';
import { createLogger } from '../logger.ts';
import { startServer } from '../server.ts';

export const serveCommand: Command = {
  summary: 'Run keelson: migrations, the actor runtime and the REST API (embedded PostgreSQL and cluster by default).',
  usage:
    'keelson serve [--port 8080] [--host 127.0.0.1] [--database-url <url>] [--kubeconfig <file>] [--data-dir ./.keelson]\n' +
    '              [--tick-interval 10s] [--max-concurrent-rollouts 32] [--verify-timeout 5m] [--trust-proxy false]\n' +
    '              [--render-timeout 10s] [--render-max-heap 128MiB] [--render-max-objects 1000] [--render-max-bytes 10MiB]\n' +
    '              [--log-level info] [--log-format json|pretty] [--no-demo]',
  run: async (argv) => {
    const options = Object.fromEntries(Object.keys(FLAG_TO_ENV).map((flag) => [flag, { type: 'string' as const }]));
    const { values } = parseArgs({ args: argv, options: { ...options, 'no-demo': { type: 'boolean' } }, strict: true });
    const { 'no-demo': noDemo, ...flags } = values as Record<string, string | undefined> & { 'no-demo'?: boolean };
    const config = loadConfig(process.env, flags);
    const log = createLogger({ level: config.logLevel, format: config.logFormat });
    const server = await startServer({ config, log, demo: noDemo ? false : undefined });

    const lines = [
      '',
      `  keelson is running at ${server.url}`,
      `    API docs      ${server.url}/docs`,
      `    visualizer    ${server.url}/ui`,
      `    metrics       ${server.url}/metrics`,
    ];
    if (server.embeddedDatabaseUrl) lines.push(`    database      psql ${server.embeddedDatabaseUrl}   (embedded)`);
    if (server.clusterKubeconfig) {
      lines.push(`    cluster       ${server.clusterUrl} (simulated): kubectl --kubeconfig ${server.clusterKubeconfig} get deploy -A`);
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
    console.log(`${lines.join('\n')}\n`);

    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'shutting down: persisting every actor');
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await server.close();
    return 0;
  },
};
