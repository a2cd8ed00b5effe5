import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { TerminalError, TransientError } from '../../src/errors.ts';
import { classifyKubeError } from '../../src/kube/kubeErrors.ts';

function status(code: number, message: string): ApiException<string> {
  return new ApiException(code, 'Unsuccessful HTTP Request', JSON.stringify({ kind: 'Status', status: 'Failure', code, message }), {});
}

describe('classifyKubeError', () => {
  it.each([500, 502, 503, 504, 429, 408])('HTTP %i is transient', (code) => {
    const error = classifyKubeError(status(code, 'try later'), 'Deployment shop/web');
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).code).toBe('kube_unavailable');
  });

  it.each([400, 403, 404, 409, 422])('HTTP %i is terminal and carries the Status message and the object', (code) => {
    const error = classifyKubeError(status(code, 'Deployment.apps "web" is invalid: spec.template: Required value'), 'Deployment shop/web');
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as TerminalError).code).toBe('kube_rejected');
    expect(error.message).toContain('Deployment shop/web');
    expect(error.message).toContain('is invalid: spec.template: Required value');
  });

  it('network errors are transient', () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
    expect(classifyKubeError(refused, 'x')).toBeInstanceOf(TransientError);
    expect(classifyKubeError(new DOMException('timed out', 'TimeoutError'), 'x')).toBeInstanceOf(TransientError);
  });

  it('an abort by the caller stays an AbortError', () => {
    const controller = new AbortController();
    controller.abort();
    const error = classifyKubeError(new DOMException('aborted', 'AbortError'), 'x', controller.signal);
    expect(error.name).toBe('AbortError');
  });

  it('an unknown kind is terminal', () => {
    expect(classifyKubeError(new Error('Unrecognized API version and kind: v1 Widget'), 'Widget shop/w')).toBeInstanceOf(TerminalError);
  });
});
