// Where keelson deploys to, as config.cluster chose it (config.ts, chooseTargets): the cluster of
// a kubeconfig file, the cluster of the pod keelson runs in (its service account), or the
// embedded simulator. The counterpart of db/database.ts for the cluster.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterKind, Config } from './config.ts';
import { TerminalError } from './errors.ts';
import { loadKubeConfig } from './kube/kubeClient.ts';
import type { Logger } from './logger.ts';
import { startSimulator, type SimulatorOptions } from './sim/index.ts';

/** Where Kubernetes mounts a pod's service account (client-node reads it below a path prefix). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ClusterHandle {
  readonly kind: ClusterKind;
  readonly kubeConfig: KubeConfig;
  /** the API server's URL */
  readonly server: string;
  /** with the simulator: a kubeconfig file for kubectl */
  readonly kubeconfigFile?: string;
  readonly close: () => Promise<void>;
}

export interface ClusterOptions {
  readonly simulator?: SimulatorOptions;
  /**
   * In-cluster mode reads `<prefix>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`;
   * the prefix is empty in a pod. Tests point it at files the simulator minted.
   */
  readonly serviceAccountPrefix?: string;
}

function loadInCluster(prefix: string): KubeConfig {
  const dir = `${prefix}${SERVICE_ACCOUNT_DIR}`;
  for (const file of ['token', 'ca.crt']) {
    if (!existsSync(path.join(dir, file))) {
      throw new TerminalError(
        `In-cluster mode needs the pod's service account ${file} at ${path.join(dir, file)}, and it is missing: ` +
          'keep automountServiceAccountToken enabled for keelson\'s pod (deploy/kustomize does), or use --cluster kubeconfig.',
        { code: 'config_invalid' },
      );
    }
  }
  const kubeConfig = new KubeConfig();
  // reads KUBERNETES_SERVICE_HOST/PORT, which config.ts has checked are set; the token file is
  // re-read as Kubernetes rotates it
  kubeConfig.loadFromCluster(prefix);
  return kubeConfig;
}

export async function openCluster(config: Config, log: Logger, options: ClusterOptions = {}): Promise<ClusterHandle> {
  switch (config.cluster) {
    case 'kubeconfig': {
      // config.ts refuses `kubeconfig` without a file
      const kubeConfig = loadKubeConfig(config.kubeconfig);
      const server = kubeConfig.getCurrentCluster()?.server ?? '';
      log.info({ cluster: server, context: kubeConfig.getCurrentContext() }, 'using the cluster of KUBECONFIG');
      return { kind: 'kubeconfig', kubeConfig, server, close: async () => {} };
    }
    case 'in-cluster': {
      const kubeConfig = loadInCluster(options.serviceAccountPrefix ?? '');
      const server = kubeConfig.getCurrentCluster()?.server ?? '';
      log.info({ cluster: server, namespace: kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace }, "using the pod's own cluster (in-cluster service account)");
      return { kind: 'in-cluster', kubeConfig, server, close: async () => {} };
    }
    case 'sim': {
      const simulator = await startSimulator({ log: log.child({ part: 'sim' }), ...options.simulator });
      try {
        const kubeConfig = new KubeConfig();
        kubeConfig.loadFromString(simulator.kubeconfigYaml());
        const kubeconfigFile = path.join(config.dataDir, 'sim.kubeconfig');
        await mkdir(config.dataDir, { recursive: true });
        await simulator.writeKubeconfig(kubeconfigFile);
        log.info({ cluster: simulator.url }, 'using the embedded simulated cluster');
        return { kind: 'sim', kubeConfig, server: simulator.url, kubeconfigFile, close: () => simulator.close() };
      } catch (error) {
        await simulator.close();
        throw error;
      }
    }
  }
}
