// The one error shape of the REST API and the one place errors become HTTP responses.
// Handlers throw; `errorMiddleware` maps. A 4xx body names the bad field and what is accepted.
import type { Socket } from 'node:net';
import type { ErrorRequestHandler } from 'express';
import {
  ForeignKeyIntegrityConstraintViolationError,
  UniqueIntegrityConstraintViolationError,
  CheckIntegrityConstraintViolationError,
  InvalidInputError,
} from 'slonik';
import type { z } from 'zod';
import { TerminalError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactSecrets } from './redact.ts';

export interface ErrorDetail {
  readonly field: string;
  readonly message: string;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

/** An error meant for the API client: status, stable code, a sentence and per-field details. */
export class ApiError extends TerminalError {
  readonly status: number;
  readonly details: readonly ErrorDetail[] | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { details?: readonly ErrorDetail[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { code, cause: options.cause });
    this.status = status;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  body(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details && this.details.length > 0 ? { details: [...this.details] } : {}),
      },
    };
  }
}

export const notFound = (message: string) => new ApiError(404, 'not_found', message);

/** zod issues → details with a dotted field path (prefixed by where the value came from). */
export function issuesToDetails(issues: readonly z.core.$ZodIssue[], prefix = ''): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const issue of issues) {
    const base = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        details.push({ field: [base, key].filter(Boolean).join('.'), message: 'unknown field; remove it (see /openapi.json for the accepted fields)' });
      }
      continue;
    }
    details.push({ field: base || prefix || '(body)', message: issue.message });
  }
  return details;
}

export function invalidRequest(where: string, error: z.ZodError): ApiError {
  const details = issuesToDetails(error.issues, where === 'body' ? '' : where);
  const first = details[0];
  const summary = first ? `${first.field}: ${first.message}` : 'the request is invalid';
  return new ApiError(400, 'invalid_request', `Invalid request ${where}: ${summary.replace(/\.$/, '')}.`, { details });
}

/** Parses `value` with `schema` or throws a 400 naming every bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw invalidRequest(where, result.error);
  return result.data;
}

// Columns a constraint can name, longest first so `path` does not shadow `manifest_path`.
const CONSTRAINT_FIELDS = [
  'namespace_resource_whitelist', 'namespace_resource_blacklist', 'cluster_resource_whitelist', 'sync_interval_s',
  'values_override', 'manifest_paths', 'webhook_secret', 'desired_status', 'manifest_path', 'source_repos', 'environment',
  'description', 'namespaces', 'image_ref', 'namespace', 'repo_url', 'project', 'branch', 'path', 'name',
];

/** `deployments_values_override_size` → `values_override`: the body field a constraint guards. */
export function fieldOfConstraint(constraint: string): string | undefined {
  const rest = constraint.replace(/^(deployments|ops_repos|projects|api_tokens)_/, '');
  return CONSTRAINT_FIELDS.find((field) => rest === field || rest.startsWith(`${field}_`));
}

/** The SQLSTATE of a driver error, wrapped or not. */
function sqlState(error: unknown): string | undefined {
  for (let e: unknown = error, i = 0; e && i < 3; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** Database refusals of a value that slipped past input validation become 409/400, never 500. */
function fromDatabase(error: unknown): ApiError | undefined {
  if (error instanceof UniqueIntegrityConstraintViolationError) {
    return new ApiError(409, 'conflict', `A row with the same key already exists (${error.constraint ?? 'unique key'}).`);
  }
  if (error instanceof ForeignKeyIntegrityConstraintViolationError) {
    return new ApiError(409, 'conflict', `Another row still refers to this one (${error.constraint ?? 'foreign key'}).`);
  }
  if (error instanceof CheckIntegrityConstraintViolationError) {
    const constraint = error.constraint ?? 'check';
    const field = fieldOfConstraint(constraint);
    return new ApiError(400, 'invalid_request', `The database refused the value (constraint ${constraint}); see the database contract in the README for what it accepts.`, {
      details: field ? [{ field, message: `refused by the database constraint ${constraint}` }] : undefined,
    });
  }
  const state = sqlState(error);
  // 22xxx data exceptions (a NUL PostgreSQL cannot store, a number out of range, ...) and 54001
  // (a value nested too deeply to parse): the input is at fault. The driver's text stays in the log.
  if (error instanceof InvalidInputError || (state !== undefined && (state.startsWith('22') || state === '54001'))) {
    return new ApiError(400, 'invalid_request', 'The database could not store a value of this request (for example a NUL character, or a value nested too deeply); remove it and retry.');
  }
  return undefined;
}

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const db = fromDatabase(error);
  if (db) return db;
  const status = (error as { status?: unknown; type?: unknown }).status;
  const type = (error as { type?: unknown }).type;
  // body-parser's errors carry a status and a type
  if (type === 'entity.parse.failed') {
    return new ApiError(400, 'invalid_json', 'The request body is not valid JSON; send a JSON object with Content-Type: application/json.');
  }
  if (type === 'entity.too.large') {
    return new ApiError(413, 'payload_too_large', 'The request body is larger than the 1 MB limit.');
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // body-parser's other refusals: an unsupported charset or encoding, an aborted upload
    return new ApiError(status, 'invalid_request', `The request body was refused: ${redactSecrets(errorMessage(error)).replace(/\.$/, '')}.`);
  }
  return new ApiError(500, 'internal', 'Internal error; the server log has the details.', { cause: error });
}

/**
 * Requests node's HTTP parser refuses (malformed request line, header too large, bad header
 * characters) never reach express; answer them in the one error shape too, then close.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason] =
    error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
  const body = JSON.stringify({
    error: { code: 'invalid_request', message: status === 431 ? 'The request headers are too large.' : status === 408 ? 'The request took too long to arrive.' : 'The request is not valid HTTP/1.1.' },
  });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function errorMiddleware(log: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const apiError = toApiError(error);
    if (apiError.status >= 500) {
      log.error({ err: { message: redactSecrets(errorMessage(error)), type: (error as Error)?.name }, method: req.method, path: req.path }, 'request failed');
    } else if (!(error instanceof ApiError)) {
      log.debug({ err: { message: redactSecrets(errorMessage(error)), type: (error as Error)?.name }, method: req.method, path: req.path }, 'request refused');
    }
    for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
    res.status(apiError.status).json(apiError.body());
  };
}
