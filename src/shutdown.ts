// Process-level shutdown with an outer bound. SIGTERM (Kubernetes), SIGINT (Ctrl-C) or a crash
// ask for it; keelson then closes gracefully (the runtime persists its actors and hands back its
// leases, servers close) — but a graceful close can hang on an unreachable database or API
// server, and a pod that has not exited when its grace period ends is SIGKILLed mid-write.
// So a watchdog bounds it: once `timeoutMs` is nearly used up it runs `force` (stops the
// embedded PostgreSQL, the one thing that would outlive the process) and exits non-zero.
//
// Hazards:
// - Node as PID 1 (a container) gets no default signal handlers: without ours SIGTERM would be
//   ignored, not fatal. The caller installs them before anything slow starts.
// - The watchdog timer is unref'd: it must never keep an otherwise finished process alive, and
//   it still fires while anything else (a hung socket) does.
// - A second request (Ctrl-C twice) skips what is left of the graceful close.
import type { Logger } from './logger.ts';

export interface ShutdownDeps {
  readonly timeoutMs: number;
  readonly log: Logger;
  /** ends the process; `process.exit` outside tests */
  readonly exit: (code: number) => void;
}

export interface Shutdown {
  /** Asks for the shutdown; the first call starts it, a second forces it. */
  request(reason: string, exitCode?: number): void;
  /**
   * What to run once asked: `close` gracefully, `force` as the last resort (quick, and safe to
   * run while `close` is still running). Runs at once if a request came first (during start-up).
   */
  handle(close: () => Promise<void>, force: () => Promise<void>): void;
  /** Resolves to the exit code once the graceful close has finished. */
  readonly done: Promise<number>;
  readonly requested: boolean;
}

/** Time kept back from the graceful close for `force`: a quarter of the bound, at most 3 s. */
export function forceBudgetMs(timeoutMs: number): number {
  return Math.min(3000, Math.floor(timeoutMs / 4));
}

export function createShutdown(deps: ShutdownDeps): Shutdown {
  const { timeoutMs, log } = deps;
  let handlers: { close: () => Promise<void>; force: () => Promise<void> } | undefined;
  let requested: { reason: string; exitCode: number } | undefined;
  let closing = false;
  let forcing = false;
  let closedWith: number | undefined;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const force = (why: string) => {
    if (forcing) return;
    forcing = true;
    if (closedWith !== undefined) {
      // closed, yet something (a socket, a timer) still holds the event loop
      log.warn({ timeoutMs }, 'shut down, but the process did not end by itself: exiting');
      deps.exit(closedWith);
      return;
    }
    log.error({ timeoutMs }, why);
    const budget = forceBudgetMs(timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, budget);
    });
    void Promise.race([handlers?.force().catch((error: unknown) => log.warn({ err: (error as Error).message }, 'forced stop failed')), bounded]).then(() => {
      clearTimeout(timer);
      deps.exit(1);
    });
  };

  const close = () => {
    if (!handlers || !requested || closing) return;
    closing = true;
    const { exitCode } = requested;
    handlers.close().then(
      () => resolveDone((closedWith = exitCode)),
      (error: unknown) => {
        log.error({ err: (error as Error).message }, 'graceful shutdown failed');
        resolveDone((closedWith = 1));
      },
    );
  };

  return {
    request(reason, exitCode = 0) {
      if (requested) {
        force(`${reason} during shutdown: exiting now`);
        return;
      }
      requested = { reason, exitCode };
      log.info({ reason, timeoutMs }, 'shutting down: persisting every actor');
      const watchdog = setTimeout(
        () => force(`graceful shutdown did not finish within ${Math.round((timeoutMs - forceBudgetMs(timeoutMs)) / 100) / 10} s: forcing exit`),
        timeoutMs - forceBudgetMs(timeoutMs),
      );
      watchdog.unref();
      close();
    },
    handle(closeFn, forceFn) {
      handlers = { close: closeFn, force: forceFn };
      close();
    },
    done,
    get requested() {
      return requested !== undefined;
    },
  };
}
