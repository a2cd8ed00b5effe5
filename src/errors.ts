// Every error keelson raises is classified: a transient error is retried with backoff (the
// remote may come back), a terminal error waits until the input changes (retrying cannot help).
// Callers branch on `kind` and on classes, never on message text.

export type ErrorKind = 'transient' | 'terminal';

export interface KeelsonErrorOptions {
  readonly code: string;
  readonly cause?: unknown;
}

export class KeelsonError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;

  constructor(kind: ErrorKind, message: string, options: KeelsonErrorOptions) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = options.code;
  }
}

/** The remote may recover: retry with backoff. */
export class TransientError extends KeelsonError {
  constructor(message: string, options: KeelsonErrorOptions) {
    super('transient', message, options);
  }
}

/** Retrying cannot help: wait for a new desired state or a fixed configuration. */
export class TerminalError extends KeelsonError {
  constructor(message: string, options: KeelsonErrorOptions) {
    super('terminal', message, options);
  }
}

export class ConfigError extends TerminalError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'config_invalid', cause });
  }
}

export class MigrationError extends TerminalError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'migration_failed', cause });
  }
}

export function isTransient(error: unknown): boolean {
  return error instanceof KeelsonError && error.kind === 'transient';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
