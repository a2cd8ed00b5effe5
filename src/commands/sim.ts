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
  usage:
    'keelson sim --kubeconfig <file> [--port 0] [--time-scale N] [--startup-delay 1s] [--rbac] [--tls [--data-dir <dir>]] [--log-level info]\n\n' +
    '  --kubeconfig <file>   write a kubeconfig for it there (admin token, group system:masters)\n' +
    '  --port <p>            listen on 127.0.0.1:<p> (0 = a free port)\n' +
    '  --time-scale N        simulated seconds per real second\n' +
    '  --startup-delay 1s    simulated time from pod creation to Ready\n' +
    '  --rbac                enforce RBAC: Roles and bindings decide; unknown tokens get 401\n' +
    '  --tls                 serve HTTPS with a CA made at start (the kubeconfig carries it)\n' +
    '  --data-dir <dir>      with --tls, also write <dir>/ca.crt\n' +
    '  --log-level info      pino level',
  run: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '0' },
        kubeconfig: { type: 'string' },
        'time-scale': { type: 'string', default: '1' },
        'startup-delay': { type: 'string', default: '1s' },
        rbac: { type: 'boolean', default: false },
        tls: { type: 'boolean', default: false },
        'data-dir': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
      },
      strict: true,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`invalid --port "${values.port}"`);
    const timeScale = Number(values['time-scale']);
    if (!(timeScale > 0)) throw new ConfigError(`invalid --time-scale "${values['time-scale']}" (a positive number)`);
    if (!values.kubeconfig) throw new ConfigError('--kubeconfig <file> is required: the simulator writes its kubeconfig there');
    const dataDir = values['data-dir'];
    if (dataDir && !values.tls) throw new ConfigError('--data-dir only holds the CA certificate of --tls: add --tls, or drop --data-dir');
    const log = createLogger({ level: values['log-level'] ?? 'info', format: process.stdout.isTTY ? 'pretty' : 'json' });
    const sim = await startSimulator({
      port,
      timeScale,
      podStartupDelayMs: parseDuration(values['startup-delay'] ?? '1s'),
      log,
      rbac: values.rbac,
      tls: values.tls ? (dataDir ? { dir: dataDir } : true) : false,
    });
    await sim.writeKubeconfig(values.kubeconfig);
    const mode = [values.rbac ? 'RBAC enforced' : 'no authorization', sim.tls ? 'TLS' : 'plain HTTP'].join(', ');
    console.log(`Simulated cluster at ${sim.url} (time scale ${timeScale}x; ${mode}).`);
    console.log(`Use it with: kubectl --kubeconfig ${values.kubeconfig} get all`);
    if (sim.tls?.caFile) console.log(`Its CA certificate: ${sim.tls.caFile}`);
    if (values.rbac) console.log(`Tokens for service accounts: kubectl --kubeconfig ${values.kubeconfig} create token <name> -n <namespace>`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await sim.close();
    return 0;
  },
};
