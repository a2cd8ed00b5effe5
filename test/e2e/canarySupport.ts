// What the canary e2e files share (canary, canaryKill, canarySwitch): an ops-repo template with
// an HTTPRoute, canary steps as values, a project policy admitting routes, and the route's
// weights as the simulator holds them.
import { sql } from 'slonik';
import type { Db } from '../../src/db/pool.ts';
import type { Simulator } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';
import { httpRouteBackends } from '../sim/gatewayApi.ts';
import { WEB_TEMPLATE } from './support.ts';

/** The web template plus an HTTPRoute sending everything to the project's Service. */
export const ROUTE_TEMPLATE = `${WEB_TEMPLATE}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {{ project }}
spec:
  parentRefs:
    - name: public
  hostnames:
    - {{ project }}.example.com
  rules:
    - backendRefs:
        - name: {{ project }}
          port: 80
`;

/** Values declaring 10 % → pause → wait-healthy → 50 % → pause. */
export const canarySteps = (pauses: [string, string]) => `keelson:
  strategy:
    canary:
      steps:
        - setWeight: 1000
        - pause: ${pauses[0]}
        - waitHealthy: true
        - setWeight: 5000
        - pause: ${pauses[1]}
`;

/** A project whose policy admits HTTPRoutes: a kind keelson does not know passes only as if cluster-scoped. */
export async function admitRoutes(db: Db, project: string): Promise<void> {
  await db.query(sql.unsafe`
    insert into projects (name, cluster_resource_whitelist) values (${project}, ${sql.array(['gateway.networking.k8s.io/HTTPRoute'], 'text')})`);
}

/** The route's backends as `name:weight` (one rule), or undefined before there is a route. */
export const routeWeights = (sim: Simulator, namespace: string, name: string): string[] | undefined =>
  httpRouteBackends(sim, namespace, name)?.[0]?.map((b) => `${b.name}:${b.weight ?? 1}`);

export async function waitRouteWeights(sim: Simulator, namespace: string, name: string, expected: string[], timeoutMs = 15_000): Promise<void> {
  await sleepUntil(() => JSON.stringify(routeWeights(sim, namespace, name)) === JSON.stringify(expected), {
    timeoutMs,
    intervalMs: 10,
    message: `route ${namespace}/${name} to be ${expected.join(', ')} (is ${JSON.stringify(routeWeights(sim, namespace, name))})`,
  });
}
