// Bearer-token authentication. Three kinds of credential, checked in this order:
// - static tokens: the admin token of the simulator's kubeconfig (user `keelson-sim-admin` in
//   `system:masters`, so existing tests and the demo keep full rights) and any added with
//   `addToken`;
// - ServiceAccount tokens the simulator minted (TokenRequest, `mintServiceAccountToken`): JWTs
//   carrying the claims a real cluster puts in them, valid while unexpired, while their audience
//   includes the API server's, and while the ServiceAccount they name still exists with the same
//   uid (deleting the ServiceAccount revokes them, as on a real cluster);
// - anything else. With RBAC on that is a 401 (a request with no credential at all is
//   `system:anonymous`, which RBAC then judges); with RBAC off it is user "anonymous", so clients
//   with made-up tokens keep working as before.
// Expiry runs on the wall clock, not simulated time: a test at timeScale 20 must not see its
// token die after three real minutes.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { TerminalError } from '../../errors.ts';
import { typeOf } from '../resources.ts';
import type { Store } from '../store.ts';

export interface UserInfo {
  readonly name: string;
  readonly uid?: string;
  readonly groups: readonly string[];
}

export const ADMIN_TOKEN = 'keelson-sim';
export const ADMIN_USER = 'keelson-sim-admin';
/** The audience of tokens the API server accepts (kube-apiserver's default --api-audiences). */
export const API_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';
export const AUTHENTICATED = 'system:authenticated';
export const UNAUTHENTICATED = 'system:unauthenticated';
export const MASTERS = 'system:masters';

const ANONYMOUS_RBAC: UserInfo = { name: 'system:anonymous', groups: [UNAUTHENTICATED] };
const ANONYMOUS_OPEN: UserInfo = { name: 'anonymous', groups: [UNAUTHENTICATED] };

export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

export function serviceAccountGroups(namespace: string): string[] {
  return ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, AUTHENTICATED];
}

interface MintedToken {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly expiresAt: number;
  readonly audiences: readonly string[];
}

export interface MintOptions {
  /** Lifetime in seconds; default 3600, as the TokenRequest API's. */
  expirationSeconds?: number;
  /** Default: the API server's own audience. A token without it cannot call the API. */
  audiences?: readonly string[];
}

export interface MintedServiceAccountToken {
  readonly token: string;
  readonly expirationTimestamp: string;
  readonly audiences: readonly string[];
  readonly expirationSeconds: number;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export class Authenticator {
  private readonly store: Store;
  private readonly rbac: boolean;
  private readonly staticTokens = new Map<string, UserInfo>();
  private readonly minted = new Map<string, MintedToken>();
  // Signs the JWTs so they are well-formed JWS; validity is decided by the `minted` map, which
  // holds every token this simulator issued.
  private readonly signingKey = randomBytes(32);

  constructor(store: Store, rbac: boolean) {
    this.store = store;
    this.rbac = rbac;
    this.addToken(ADMIN_TOKEN, ADMIN_USER, [MASTERS]);
  }

  /** A static token for `user` (every authenticated user is also in `system:authenticated`). */
  addToken(token: string, user: string, groups: readonly string[] = []): void {
    if (!token || /\s/.test(token)) throw new TerminalError('A simulator token must be a non-empty string without whitespace.', { code: 'sim_token_invalid' });
    if (!user) throw new TerminalError('A simulator token needs a user name.', { code: 'sim_token_invalid' });
    this.staticTokens.set(token, { name: user, groups: groups.includes(AUTHENTICATED) ? [...groups] : [...groups, AUTHENTICATED] });
  }

  /** Mints a token for an existing ServiceAccount, as the TokenRequest API does. */
  mintServiceAccountToken(namespace: string, name: string, options: MintOptions = {}): MintedServiceAccountToken {
    const sa = this.store.get(typeOf('ServiceAccount'), namespace, name);
    if (!sa) {
      throw new TerminalError(`ServiceAccount "${name}" does not exist in namespace "${namespace}": create it before minting a token for it.`, { code: 'sim_service_account_not_found' });
    }
    const expirationSeconds = options.expirationSeconds ?? 3600;
    const audiences = options.audiences && options.audiences.length > 0 ? [...options.audiences] : [API_AUDIENCE];
    const issuedAt = Math.floor(Date.now() / 1000);
    const expiresAt = (issuedAt + expirationSeconds) * 1000;
    const uid = sa.metadata.uid ?? '';
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'keelson-sim' }));
    const claims = base64url(
      JSON.stringify({
        aud: audiences,
        exp: issuedAt + expirationSeconds,
        iat: issuedAt,
        iss: API_AUDIENCE,
        jti: randomUUID(),
        'kubernetes.io': { namespace, serviceaccount: { name, uid } },
        nbf: issuedAt,
        sub: serviceAccountUser(namespace, name),
      }),
    );
    const signature = createHmac('sha256', this.signingKey).update(`${header}.${claims}`).digest('base64url');
    const token = `${header}.${claims}.${signature}`;
    this.minted.set(token, { namespace, name, uid, expiresAt, audiences });
    return { token, expirationTimestamp: rfc3339(expiresAt), audiences, expirationSeconds };
  }

  /**
   * The user behind an `Authorization` header, or undefined when the request must be refused
   * with 401 (RBAC on and a bearer token the simulator does not recognise).
   */
  authenticate(authorization: string | undefined): UserInfo | undefined {
    const m = authorization ? /^bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!m) return this.rbac ? ANONYMOUS_RBAC : ANONYMOUS_OPEN;
    const token = m[1]!;
    const known = this.staticTokens.get(token) ?? this.serviceAccount(token);
    if (known) return known;
    return this.rbac ? undefined : ANONYMOUS_OPEN;
  }

  private serviceAccount(token: string): UserInfo | undefined {
    const minted = this.minted.get(token);
    if (!minted) return undefined;
    if (Date.now() >= minted.expiresAt) {
      this.minted.delete(token);
      return undefined;
    }
    if (!minted.audiences.includes(API_AUDIENCE)) return undefined;
    const sa = this.store.get(typeOf('ServiceAccount'), minted.namespace, minted.name);
    if (!sa || sa.metadata.uid !== minted.uid) return undefined;
    return { name: serviceAccountUser(minted.namespace, minted.name), uid: minted.uid, groups: serviceAccountGroups(minted.namespace) };
  }
}
