// The simulator's front door as one object for the router: authenticate a request, authorize it
// (RBAC when asked for, else everything is allowed, as with `--authorization-mode=AlwaysAllow`),
// and answer the review and token requests. See README.md in this folder.
import type { SimClock } from '../clock.ts';
import type { ResourceType } from '../resources.ts';
import type { Store } from '../store.ts';
import { Authenticator, type UserInfo } from './authenticator.ts';
import type { Attributes } from './policy.ts';
import { RbacAuthorizer, type Decision, type RulesResult } from './rbac.ts';
import { selfSubjectAccessReview, selfSubjectReview, selfSubjectRulesReview, tokenRequest } from './reviews.ts';

const ALLOW_ALL: Decision = { allowed: true, reason: '' };
const ALL_RULES: RulesResult = {
  rules: [
    { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
    { verbs: ['*'], nonResourceURLs: ['*'] },
  ],
  errors: [],
};

export class SimAuth {
  readonly rbacEnabled: boolean;
  readonly authenticator: Authenticator;
  private readonly store: Store;
  private readonly clock: SimClock;
  private readonly rbac: RbacAuthorizer | undefined;

  constructor(options: { store: Store; clock: SimClock; rbac: boolean }) {
    this.store = options.store;
    this.clock = options.clock;
    this.rbacEnabled = options.rbac;
    this.authenticator = new Authenticator(options.store, options.rbac);
    this.rbac = options.rbac ? new RbacAuthorizer(options.store) : undefined;
  }

  close(): void {
    this.rbac?.close();
  }

  /** The caller, or undefined for a 401. */
  authenticate(authorization: string | undefined): UserInfo | undefined {
    return this.authenticator.authenticate(authorization);
  }

  authorize(user: UserInfo, attrs: Attributes): Decision {
    return this.rbac ? this.rbac.authorize(user, attrs) : ALLOW_ALL;
  }

  rulesFor(user: UserInfo, namespace: string): RulesResult {
    return this.rbac ? this.rbac.rulesFor(user, namespace) : ALL_RULES;
  }

  /** Answers a create of a review kind (`type.virtual`). */
  review(type: ResourceType, body: unknown, user: UserInfo): Record<string, unknown> {
    switch (type.kind) {
      case 'SelfSubjectAccessReview':
        return selfSubjectAccessReview(body, user, this);
      case 'SelfSubjectRulesReview':
        return selfSubjectRulesReview(body, user, this);
      case 'SelfSubjectReview':
        return selfSubjectReview(user, this.clock.timestamp());
      default:
        throw new Error(`simulator: no review handler for ${type.kind}`);
    }
  }

  /** Answers `POST …/serviceaccounts/NAME/token`. */
  requestToken(namespace: string, name: string, body: unknown): Record<string, unknown> {
    return tokenRequest(this.store, this.authenticator, namespace, name, body);
  }
}

export type { UserInfo };
