// One place decides how git is run for ops repos, because the URL and the repository content are
// not ours: a prompt would hang the process forever, a hook or fsmonitor command from config
// would run code on every checkout, and an `ext::` remote would run a shell.
import { simpleGit, type SimpleGit } from 'simple-git';

/**
 * Protocols git may use at all; a second line behind assertSafeRepoUrl (also covers redirects to
 * other transports, and submodule or alternate URLs). `file` only when the operator allows it.
 */
const allowedProtocols = (allowFile: boolean) => (allowFile ? 'https:http:ssh:git:file' : 'https:http:ssh:git');

/** The guarded GIT_* variables we set on purpose; simple-git strips every other GIT_* variable. */
const gitEnvironment = (allowFile: boolean) => ({
  // Never ask for a user name or password on a terminal: fail instead (a daemon has no one to answer).
  GIT_TERMINAL_PROMPT: '0',
  GIT_ALLOW_PROTOCOL: allowedProtocols(allowFile),
  // ssh prompts for host keys and passphrases through SSH_ASKPASS or the tty; without a tty it
  // fails, which is what we want. Locale fixed so error classification sees English messages.
  LC_ALL: 'C',
});

// Variables that name a program git may run (simple-git refuses a task that passes them).
const PROGRAM_VARIABLES = new Set(['EDITOR', 'VISUAL', 'PAGER', 'PREFIX', 'SSH_ASKPASS']);

export function childEnvironment(allowFile: boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    // Ambient GIT_* variables (GIT_DIR, GIT_SSH_COMMAND, GIT_CONFIG_*) could redirect or hijack
    // the operation, and program variables could run something; we drop them all. PATH, HOME
    // (the operator's ~/.gitconfig, ~/.ssh) and proxy settings pass through on purpose.
    const upper = key.toUpperCase();
    if (value === undefined || upper.startsWith('GIT_') || PROGRAM_VARIABLES.has(upper)) continue;
    env[key] = value;
  }
  return { ...env, ...gitEnvironment(allowFile) };
}

/**
 * Per-command config overrides of whatever the host's config says: no hooks (a fresh clone copies
 * hooks from init.templateDir; core.hooksPath may point anywhere) and no fsmonitor command.
 */
export const SAFE_GIT_CONFIG = ['core.hooksPath=/dev/null', 'core.fsmonitor=false'] as const;

export interface CreateGitOptions {
  readonly baseDir: string;
  readonly signal?: AbortSignal;
  /** Kill git when it prints nothing for this long (a stalled remote). */
  readonly timeoutMs: number;
  /** KEELSON_ALLOW_FILE_REPOS: whether git may use the file transport. */
  readonly allowFileRepos: boolean;
}

export function createGit(options: CreateGitOptions): SimpleGit {
  return simpleGit({
    baseDir: options.baseDir,
    maxConcurrentProcesses: 1,
    config: [...SAFE_GIT_CONFIG],
    unsafe: { allowUnsafeHooksPath: true, allowUnsafeFsMonitor: true },
    allowEnvironment: Object.keys(gitEnvironment(options.allowFileRepos)),
    timeout: { block: options.timeoutMs },
    ...(options.signal ? { abort: options.signal } : {}),
  }).env(childEnvironment(options.allowFileRepos));
}
