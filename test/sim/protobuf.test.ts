// Decoding Kubernetes' protobuf request bodies (the `k8s\0` + runtime.Unknown envelope). The
// kubectl conformance tests cover what kubectl really sends; these cover the edges.
import { describe, expect, it } from 'vitest';
import { decodeProtobufObject } from '../../src/sim/protobuf.ts';
import { StatusError } from '../../src/sim/status.ts';

// A minimal protobuf writer, enough to build test messages by field number.
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
};
const bytesField = (field: number, value: Buffer | string): Buffer => {
  const data = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  return Buffer.from([...varint(field * 8 + 2), ...varint(data.length), ...data]);
};
const varintField = (field: number, value: number): Buffer => Buffer.from([...varint(field * 8), ...varint(value)]);
const envelope = (apiVersion: string, kind: string, raw: Buffer): Buffer =>
  Buffer.concat([Buffer.from('k8s\0', 'latin1'), bytesField(1, Buffer.concat([bytesField(1, apiVersion), bytesField(2, kind)])), bytesField(2, raw), bytesField(4, 'application/vnd.kubernetes.protobuf')]);

function statusOf(body: Buffer): { code: number; message: string } {
  try {
    decodeProtobufObject(body);
  } catch (error) {
    if (error instanceof StatusError) return { code: error.code, message: error.status.message ?? '' };
    throw error;
  }
  throw new Error('decoded; expected a refusal');
}

describe('decodeProtobufObject', () => {
  it('decodes a TokenRequest, skipping fields it does not know', () => {
    const spec = Buffer.concat([bytesField(1, 'https://kubernetes.default.svc'), bytesField(1, 'vault'), varintField(4, 7200), varintField(99, 1)]);
    const metadata = Buffer.concat([bytesField(1, 'deployer'), bytesField(3, 'shop'), bytesField(11, Buffer.concat([bytesField(1, 'app'), bytesField(2, 'web')]))]);
    const body = envelope('authentication.k8s.io/v1', 'TokenRequest', Buffer.concat([bytesField(1, metadata), bytesField(2, spec)]));
    expect(decodeProtobufObject(body)).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: 'deployer', namespace: 'shop', labels: { app: 'web' } },
      spec: { audiences: ['https://kubernetes.default.svc', 'vault'], expirationSeconds: 7200 },
    });
  });

  it('decodes a SelfSubjectAccessReview’s resource attributes', () => {
    const attrs = Buffer.concat([bytesField(1, 'shop'), bytesField(2, 'patch'), bytesField(3, 'apps'), bytesField(5, 'deployments'), bytesField(6, 'scale'), bytesField(7, 'web')]);
    const body = envelope('authorization.k8s.io/v1', 'SelfSubjectAccessReview', bytesField(2, bytesField(1, attrs)));
    expect(decodeProtobufObject(body)).toMatchObject({
      spec: { resourceAttributes: { namespace: 'shop', verb: 'patch', group: 'apps', resource: 'deployments', subresource: 'scale', name: 'web' } },
    });
  });

  it('answers 415 for a kind it has no schema for, naming the way out', () => {
    expect(statusOf(envelope('v1', 'Namespace', bytesField(1, bytesField(1, 'shop'))))).toEqual({
      code: 415,
      message: 'the simulator cannot decode Namespace (v1) from protobuf - send it as application/json',
    });
  });

  it('answers 400 for a body that is not the envelope or is cut short', () => {
    expect(statusOf(Buffer.from('{"kind":"Namespace"}'))).toEqual({ code: 400, message: 'error decoding request body: protobuf body does not begin with the k8s\\0 envelope' });
    const whole = envelope('authentication.k8s.io/v1', 'TokenRequest', bytesField(2, varintField(4, 3600)));
    expect(statusOf(whole.subarray(0, whole.length - 30)).code).toBe(400);
  });
});
