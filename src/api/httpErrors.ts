// The one error shape of the REST API and the one place errors become HTTP responses.
// Handlers throw; `errorMiddleware` maps. A 4xx body names the bad field and what is accepted.
import type { ErrorRequestHandler } from 'express';
import {
  ForeignKeyIntegrityConstraintViolationError,
  UniqueIntegrityConstraintViolationError,
  CheckIntegrityConstraintViolationError,
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
  return new ApiError(400, 'invalid_request', `Invalid request ${where}: ${summary}`, { details });
}

/** Parses `value` with `schema` or throws a 400 naming every bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw invalidRequest(where, result.error);
  return result.data;
}

/** Database constraint violations that slip past input validation become 409/400, never 500. */
function fromDatabase(error: unknown): ApiError | undefined {
  if (error instanceof UniqueIntegrityConstraintViolationError) {
    return new ApiError(409, 'conflict', `A row with the same key already exists (${error.constraint ?? 'unique key'}).`);
  }
  if (error instanceof ForeignKeyIntegrityConstraintViolationError) {
    return new ApiError(409, 'conflict', `Another row still refers to this one (${error.constraint ?? 'foreign key'}).`);
  }
  if (error instanceof CheckIntegrityConstraintViolationError) {
    return new ApiError(400, 'invalid_request', `The database refused the value (constraint ${error.constraint ?? 'check'}).`);
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
    return new ApiError(status, 'invalid_request', redactSecrets(errorMessage(error)));
  }
  return new ApiError(500, 'internal', 'Internal error; the server log has the details.', { cause: error });
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
    }
    for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
    res.status(apiError.status).json(apiError.body());
  };
}
