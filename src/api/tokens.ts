// API tokens: `kls_<43 base64url chars>` (32 random bytes), shown once, stored as a sha-256 hash.
// Shared by `keelson token`, the API's auth middleware and `serve`'s demo start.
import { createHash, randomBytes } from 'node:crypto';
import { sql, UniqueIntegrityConstraintViolationError, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { NAME_PATTERN } from '../db/rows.ts';
import { TerminalError } from '../errors.ts';

export const PERMISSIONS = ['deploy:read', 'deploy:promote', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const TOKEN_NAME_PATTERN = /^[A-Za-z0-9][-_.A-Za-z0-9]{0,62}$/;
export const TOKEN_PATTERN = /^kls_[A-Za-z0-9_-]{43}$/;

export const CreateTokenInput = z.strictObject({
  name: z.string().regex(TOKEN_NAME_PATTERN, 'expected 1-63 letters, digits, "-", "_" or ".", starting with a letter or digit'),
  permissions: z
    .array(z.enum(PERMISSIONS, { error: `expected one of ${PERMISSIONS.join(', ')}` }))
    .min(1, `expected at least one of ${PERMISSIONS.join(', ')}`),
  project: z
    .string()
    .regex(NAME_PATTERN, 'expected a project name (lowercase letters, digits and "-", at most 63)')
    .nullish(),
});
export type CreateTokenInput = z.input<typeof CreateTokenInput>;

export const TokenInfo = z.object({
  id: z.string().uuid(),
  name: z.string(),
  permissions: z.array(z.enum(PERMISSIONS)),
  project: z.string().nullable(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type TokenInfo = z.infer<typeof TokenInfo>;

export class TokenError extends TerminalError {
  constructor(message: string, code = 'token_invalid') {
    super(message, { code });
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function generateToken(): string {
  return `kls_${randomBytes(32).toString('base64url')}`;
}

/** Creates a token and returns its secret: the only time it exists outside the caller's hands. */
export async function createToken(
  db: CommonQueryMethods,
  input: CreateTokenInput,
  options: { actor?: string } = {},
): Promise<{ token: string; info: TokenInfo }> {
  const parsed = CreateTokenInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TokenError(`invalid ${String(issue?.path[0] ?? 'input')}: ${issue?.message ?? 'invalid'}`);
  }
  const { name, permissions, project } = parsed.data;
  const token = generateToken();
  const unique = [...new Set(permissions)];
  try {
    const info = await db.one(sql.type(TokenInfo)`
      insert into api_tokens (name, token_hash, permissions, project)
      values (${name}, ${hashToken(token)}, ${sql.array(unique, 'text')}, ${project ?? null})
      returning id, name, permissions, project, created_at, last_used_at, revoked_at`);
    await db.query(sql.unsafe`
      insert into audit_log (actor, action, target, payload)
      values (${options.actor ?? 'keelson'}, 'token.create', ${`token/${name}`},
              ${sql.jsonb({ permissions: unique, project: project ?? null })})`);
    return { token, info };
  } catch (error) {
    if (error instanceof UniqueIntegrityConstraintViolationError) {
      throw new TokenError(`a token named "${name}" already exists; revoke it first (keelson token revoke ${name})`, 'token_exists');
    }
    throw error;
  }
}

/** Revokes the active token of that name; false when there is none. */
export async function revokeToken(db: CommonQueryMethods, name: string, options: { actor?: string } = {}): Promise<boolean> {
  const rows = await db.any(sql.type(z.object({ id: z.string() }))`
    update api_tokens set revoked_at = now() where name = ${name} and revoked_at is null returning id`);
  if (rows.length > 0) {
    await db.query(sql.unsafe`
      insert into audit_log (actor, action, target) values (${options.actor ?? 'keelson'}, 'token.revoke', ${`token/${name}`})`);
  }
  return rows.length > 0;
}

export async function listTokens(db: CommonQueryMethods): Promise<readonly TokenInfo[]> {
  return await db.any(sql.type(TokenInfo)`
    select id, name, permissions, project, created_at, last_used_at, revoked_at
    from api_tokens order by revoked_at is not null, name, created_at`);
}

export interface Principal {
  readonly tokenId: string;
  readonly name: string;
  readonly permissions: readonly Permission[];
  readonly project: string | null;
}

/** The principal of an active token, or null for a malformed, unknown or revoked one. */
export async function findPrincipal(db: CommonQueryMethods, token: string): Promise<Principal | null> {
  if (!TOKEN_PATTERN.test(token)) return null;
  const row = await db.maybeOne(sql.type(TokenInfo.pick({ id: true, name: true, permissions: true, project: true }))`
    select id, name, permissions, project from api_tokens
    where token_hash = ${hashToken(token)} and revoked_at is null`);
  return row ? { tokenId: row.id, name: row.name, permissions: row.permissions, project: row.project } : null;
}

/** `admin` implies every permission; the others stand alone. */
export function hasPermission(principal: Principal, permission: Permission): boolean {
  return principal.permissions.includes('admin') || principal.permissions.includes(permission);
}

/** A project-scoped token sees its own project only. */
export function canSeeProject(principal: Principal, project: string): boolean {
  return principal.project === null || principal.project === project;
}
