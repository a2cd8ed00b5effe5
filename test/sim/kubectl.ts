// The real kubectl (1.32, chosen by the dispatcher from the simulator's /version) bound to a
// simulator: each caller gets its own kubeconfig and discovery cache in a temp dir, so tests do
// not share kubectl's cached discovery.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Simulator } from '../../src/sim/index.ts';

const KUBECTL = '/usr/bin/kubectl';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Kubectl = (args: string[], stdin?: string) => Promise<KubectlResult>;

/**
 * A kubectl for `sim` under `root`: as the kubeconfig's admin, with `options.token`, or with a
 * kubeconfig text of the test's own.
 */
export async function kubectl(sim: Simulator, root: string, name: string, options: { token?: string; kubeconfig?: string } = {}): Promise<Kubectl> {
  const dir = await mkdtemp(path.join(root, `${name}-`));
  const kubeconfig = path.join(dir, 'kubeconfig');
  if (options.kubeconfig !== undefined) await writeFile(kubeconfig, options.kubeconfig, { mode: 0o600 });
  else await sim.writeKubeconfig(kubeconfig, { token: options.token });
  return (args, stdin) =>
    new Promise((resolve) => {
      const child = execFile(
        KUBECTL,
        ['--kubeconfig', kubeconfig, '--cache-dir', path.join(dir, 'cache'), ...args],
        { env: { ...process.env, HOME: dir, KUBECONFIG: kubeconfig }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      if (stdin !== undefined) child.stdin?.end(stdin);
    });
}
