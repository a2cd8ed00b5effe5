import { parseArgs } from 'node:util';
import type { Command } from '../cli.ts';
import { ConfigError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { startSimulator } from '../sim/index.ts';

/** `2s`, `500ms`, `1m`, or a bare number of milliseconds. */
function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new ConfigError(`invalid duration "${value}" (use e.g. 500ms, 2s, 1m)`);
  const n = Number(m[1]);
  return m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n;
}

export const simCommand: Command = {
  summary: 'Run the simulated Kubernetes cluster (kubectl and client-node accept it).',
  usage: 'keelson sim --port <p> --kubeconfig <file> [--time-scale N] [--startup-delay 2s] [--log-level info]',
  run: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '0' },
        kubeconfig: { type: 'string' },
        'time-scale': { type: 'string', default: '1' },
        'startup-delay': { type: 'string', default: '1s' },
        'log-level': { type: 'string', default: 'info' },
      },
      strict: true,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`invalid --port "${values.port}"`);
    const timeScale = Number(values['time-scale']);
    if (!(timeScale > 0)) throw new ConfigError(`invalid --time-scale "${values['time-scale']}" (a positive number)`);
    if (!values.kubeconfig) throw new ConfigError('--kubeconfig <file> is required: the simulator writes its kubeconfig there');
    const log = createLogger({ level: values['log-level'] ?? 'info', format: process.stdout.isTTY ? 'pretty' : 'json' });
    const sim = await startSimulator({ port, timeScale, podStartupDelayMs: parseDuration(values['startup-delay'] ?? '1s'), log });
    await sim.writeKubeconfig(values.kubeconfig);
    console.log(`Simulated cluster at ${sim.url} (time scale ${timeScale}x).`);
    console.log(`Use it with: kubectl --kubeconfig ${values.kubeconfig} get all`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await sim.close();
    return 0;
  },
};
