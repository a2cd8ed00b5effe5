// The errors a deploy target raises, in two families the caller must tell apart:
// - Precondition errors: the call itself is wrong (a revision the inventory does not hold, weights
//   that do not sum to 10,000 bps, a split recorded for another deployment, a name the target
//   cannot use). Decided by pure functions before any provider call, so they are cheap,
//   deterministic and never the provider's fault; retrying the same call cannot help (terminal).
// - Provider errors: the provider (the Kubernetes API, a host's process supervisor) failed or
//   refused. They carry the request (verb and object) and the response (status, message), which
//   is what an operator needs to act, and keep the project's classification: transient (retry
//   with backoff) or terminal.
// A revision that was deployed but does not become healthy is neither: `RevisionUnhealthy`.
import { KeelsonError, TerminalError, TransientError, type ErrorKind } from '../errors.ts';

/** Base of every precondition error: the call is wrong, nothing was asked of the provider. */
export class TargetPreconditionError extends TerminalError {}

export class InvalidTargetInput extends TargetPreconditionError {
  constructor(message: string) {
    super(message, { code: 'target_input_invalid' });
  }
}

export class InvalidRevisionName extends TargetPreconditionError {
  readonly revision: string;
  constructor(revision: string, why: string) {
    super(`Revision name ${JSON.stringify(revision)} is invalid: ${why}.`, { code: 'revision_name_invalid' });
    this.revision = revision;
  }
}

export class RevisionNotFound extends TargetPreconditionError {
  readonly deploymentId: string;
  readonly revision: string;
  constructor(deploymentId: string, revision: string) {
    super(`Revision ${revision} is not in the inventory of deployment ${deploymentId}.`, { code: 'revision_not_found' });
    this.deploymentId = deploymentId;
    this.revision = revision;
  }
}

export class SplitNotFound extends TargetPreconditionError {
  readonly deploymentId: string;
  constructor(deploymentId: string) {
    super(`No traffic split is recorded for deployment ${deploymentId}.`, { code: 'split_not_found' });
    this.deploymentId = deploymentId;
  }
}

export class SplitForOtherDeployment extends TargetPreconditionError {
  readonly deploymentId: string;
  readonly splitDeploymentId: string;
  constructor(deploymentId: string, splitDeploymentId: string) {
    super(`The traffic split given for deployment ${deploymentId} is recorded for deployment ${splitDeploymentId}.`, { code: 'split_for_other_deployment' });
    this.deploymentId = deploymentId;
    this.splitDeploymentId = splitDeploymentId;
  }
}

export class WeightsDoNotSum extends TargetPreconditionError {
  readonly deploymentId: string;
  readonly sum: number;
  constructor(deploymentId: string, sum: number) {
    super(`The traffic split of deployment ${deploymentId} sums to ${sum} bps; it must sum to exactly 10000 bps.`, { code: 'weights_do_not_sum' });
    this.deploymentId = deploymentId;
    this.sum = sum;
  }
}

export class DuplicateSplitEntry extends TargetPreconditionError {
  readonly revision: string;
  constructor(deploymentId: string, revision: string) {
    super(`The traffic split of deployment ${deploymentId} names revision ${revision} more than once.`, { code: 'split_duplicate_revision' });
    this.revision = revision;
  }
}

/** Drain and archive refuse a revision the recorded split still sends traffic to. */
export class RevisionCarriesTraffic extends TargetPreconditionError {
  readonly revision: string;
  readonly weightBps: number;
  constructor(deploymentId: string, revision: string, weightBps: number) {
    super(`Revision ${revision} of deployment ${deploymentId} still receives ${weightBps} bps in the recorded split; apply a split without it first.`, {
      code: 'revision_carries_traffic',
    });
    this.revision = revision;
    this.weightBps = weightBps;
  }
}

/** The revision's plan is not one this target can carry out (checked purely, before any call). */
export class InvalidPlan extends TargetPreconditionError {
  readonly revision: string;
  constructor(revision: string, why: string) {
    super(`The plan of revision ${revision} is invalid: ${why}.`, { code: 'plan_invalid' });
    this.revision = revision;
  }
}

/** The revision was deployed but did not become healthy (a crash loop, an unpullable image). */
export class RevisionUnhealthy extends TerminalError {
  readonly revision: string;
  constructor(revision: string, message: string, cause?: unknown) {
    super(`Revision ${revision} is unhealthy: ${message}`, { code: 'rollout_failed', cause });
    this.revision = revision;
  }
}

/** What the target asked of the provider. */
export interface ProviderRequest {
  /** The target's provider step: `apply`, `scale`, `delete`, `get`, `discover`, … */
  readonly verb: string;
  /** The object it concerns, as messages name it: `Deployment shop/web-r2`. */
  readonly object: string;
}

/** What the provider answered: an HTTP-like status when it has one, and its message. */
export interface ProviderResponse {
  readonly status?: number;
  readonly message: string;
}

export interface ProviderFailure {
  readonly request: ProviderRequest;
  readonly response: ProviderResponse;
}

function providerMessage(request: ProviderRequest, response: ProviderResponse): string {
  const status = response.status === undefined ? '' : ` (status ${response.status})`;
  return `Provider failed to ${request.verb} ${request.object}${status}: ${response.message}`;
}

/** A provider failure that may pass: retry with backoff. */
export class TransientProviderError extends TransientError implements ProviderFailure {
  readonly request: ProviderRequest;
  readonly response: ProviderResponse;
  constructor(request: ProviderRequest, response: ProviderResponse, options: { code: string; cause?: unknown }) {
    super(providerMessage(request, response), options);
    this.request = request;
    this.response = response;
  }
}

/** A provider refusal that retrying cannot fix (an object the server rejects). */
export class TerminalProviderError extends TerminalError implements ProviderFailure {
  readonly request: ProviderRequest;
  readonly response: ProviderResponse;
  constructor(request: ProviderRequest, response: ProviderResponse, options: { code: string; cause?: unknown }) {
    super(providerMessage(request, response), options);
    this.request = request;
    this.response = response;
  }
}

/** Either kind of provider error: both are KeelsonErrors, classified like every other. */
export type ProviderError = TransientProviderError | TerminalProviderError;

export function isProviderError(error: unknown): error is ProviderError {
  return error instanceof TransientProviderError || error instanceof TerminalProviderError;
}

export function isPreconditionError(error: unknown): error is TargetPreconditionError {
  return error instanceof TargetPreconditionError;
}

/** A provider error of the given kind (the underlying error's, for a wrapped KeelsonError). */
export function providerError(kind: ErrorKind, request: ProviderRequest, response: ProviderResponse, options: { code: string; cause?: unknown }): ProviderError {
  return kind === 'transient' ? new TransientProviderError(request, response, options) : new TerminalProviderError(request, response, options);
}

/** The kind a classified error carries; anything unclassified is terminal (a loop would not help). */
export function kindOf(error: unknown): ErrorKind {
  return error instanceof KeelsonError ? error.kind : 'terminal';
}
