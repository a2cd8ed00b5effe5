// The template used by a deployment without an ops repo: one Deployment and one Service named
// after the project. Built as objects rather than YAML text so no value (an env var containing
// `: ` or a newline) can change the structure.
import { z } from 'zod';
import { TerminalError } from '../errors.ts';
import { mergeValues } from './mergeValues.ts';
import type { KubeObject } from './parseManifests.ts';

export const BUILTIN_DEFAULTS = { replicas: 1, port: 8080, env: {} } as const;

const BuiltinValues = z.object({
  replicas: z.number().int().min(0).max(10_000),
  port: z.number().int().min(1).max(65_535),
  env: z.record(z.string().regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, 'must be a valid environment variable name'), z.union([z.string(), z.number(), z.boolean()])),
});

export interface BuiltinInput {
  readonly project: string;
  readonly namespace: string;
  readonly imageRef: string;
  readonly valuesOverride: Record<string, unknown>;
}

export function renderBuiltin(input: BuiltinInput): { objects: KubeObject[]; values: Record<string, unknown> } {
  const values = mergeValues(BUILTIN_DEFAULTS as unknown as Record<string, unknown>, input.valuesOverride);
  const parsed = BuiltinValues.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? `values.${issue.path.join('.')}` : 'values';
    throw new TerminalError(
      `The built-in template cannot use ${where}: ${issue?.message ?? 'invalid value'}. ` +
        'Fix deployments.values_override (replicas: whole number ≥ 0, port: 1-65535, env: object of NAME → string/number/boolean).',
      { code: 'render_template' },
    );
  }
  const { replicas, port, env } = parsed.data;
  const selector = { 'app.kubernetes.io/name': input.project };
  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: input.project, namespace: input.namespace, labels: { ...selector } },
    spec: {
      replicas,
      selector: { matchLabels: { ...selector } },
      template: {
        metadata: { labels: { ...selector } },
        spec: {
          containers: [
            {
              name: input.project,
              image: input.imageRef,
              ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
              env: Object.entries(env).map(([name, value]) => ({ name, value: String(value) })),
            },
          ],
        },
      },
    },
  };
  const service: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: input.project, namespace: input.namespace, labels: { ...selector } },
    spec: {
      type: 'ClusterIP',
      selector: { ...selector },
      ports: [{ name: 'http', port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
  return { objects: [deployment, service], values };
}
