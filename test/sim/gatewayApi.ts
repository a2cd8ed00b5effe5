// Gateway API for tests: installs the Gateway and HTTPRoute CRDs (fixtures/gateway-api-crds.yaml)
// into a simulator over its HTTP API, as `kubectl apply --server-side` would, and reads an
// HTTPRoute's backends and weights straight from the simulator's store.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { Simulator } from '../../src/sim/index.ts';

export const GATEWAY_API_CRDS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'gateway-api-crds.yaml');
export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';

export async function gatewayApiCrds(): Promise<KubernetesObject[]> {
  const text = await readFile(GATEWAY_API_CRDS_FILE, 'utf8');
  return parseAllDocuments(text).map((doc) => doc.toJS() as KubernetesObject);
}

/** Server-side applies both CRDs; HTTPRoute and Gateway are served when it returns. */
export async function installGatewayApi(sim: Simulator): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml());
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const crd of await gatewayApiCrds()) await client.patch(crd, undefined, undefined, 'keelson-test', true, PatchStrategy.ServerSideApply);
}

export interface BackendRef {
  name: string;
  port?: number;
  weight?: number;
}

/** The backendRefs of each rule of an HTTPRoute as stored, or undefined when there is none. */
export function httpRouteBackends(sim: Simulator, namespace: string, name: string): BackendRef[][] | undefined {
  const type = sim.resources.findByKind(GATEWAY_API_VERSION, 'HTTPRoute');
  if (!type) return undefined;
  const route = sim.store.get(type, namespace, name);
  if (!route) return undefined;
  const rules = ((route.spec as { rules?: { backendRefs?: BackendRef[] }[] } | undefined)?.rules ?? []);
  return rules.map((rule) => (rule.backendRefs ?? []).map((ref) => ({ name: ref.name, port: ref.port, weight: ref.weight })));
}
