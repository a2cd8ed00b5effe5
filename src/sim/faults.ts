// Fault injection state, switched at run time by tests: latency, an error rate, dropped watches,
// a paused (unreachable) server. The HTTP layer consults it; in-process helpers never do.

export interface FaultState {
  latencyMs: number;
  errorRate: number;
  errorCodes: number[];
}

export const DEFAULT_ERROR_CODES = [500, 503, 429];

export function initialFaults(): FaultState {
  return { latencyMs: 0, errorRate: 0, errorCodes: [...DEFAULT_ERROR_CODES] };
}

/** The injected error for one request, or undefined when it should be served. */
export function pickFault(state: FaultState, random: () => number = Math.random): number | undefined {
  if (state.errorRate <= 0 || random() >= state.errorRate) return undefined;
  const codes = state.errorCodes.length > 0 ? state.errorCodes : DEFAULT_ERROR_CODES;
  return codes[Math.floor(random() * codes.length)] ?? 500;
}

export function faultStatus(code: number): { reason: string; message: string } {
  switch (code) {
    case 429:
      return { reason: 'TooManyRequests', message: 'the server has received too many requests and has asked us to try again later (simulated fault)' };
    case 503:
      return { reason: 'ServiceUnavailable', message: 'the server is currently unable to handle the request (simulated fault)' };
    case 504:
      return { reason: 'Timeout', message: 'the server was unable to return a response in the time allotted (simulated fault)' };
    default:
      return { reason: 'InternalError', message: 'Internal error occurred: simulated fault' };
  }
}
