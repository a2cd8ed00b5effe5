/** A counting semaphore whose waiters can give up through an AbortSignal. */
export class Semaphore {
  #available: number;
  readonly #waiters: Array<{ resolve: () => void; reject: (error: unknown) => void; signal?: AbortSignal; onAbort: () => void }> = [];

  constructor(permits: number) {
    this.#available = permits;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#available > 0) {
      this.#available--;
      return this.#releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
    return this.#releaser();
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) {
        next.signal?.removeEventListener('abort', next.onAbort);
        next.resolve();
      } else {
        this.#available++;
      }
    };
  }
}

/**
 * The limit on concurrent rollouts: a deployment takes a slot at the first effect of an action
 * and keeps it, re-entrantly, until its actor comes to rest. A rollout waiting for a slot stays
 * in its first state (it shows as `syncing`, `rolling-back` or `stopped` with no effect run).
 */
export class RolloutSlots {
  readonly #semaphore: Semaphore;
  readonly #held = new Map<string, Promise<() => void>>();

  constructor(limit: number) {
    this.#semaphore = new Semaphore(limit);
  }

  get active(): number {
    return this.#held.size;
  }

  async enter(deploymentId: string, signal: AbortSignal): Promise<void> {
    let slot = this.#held.get(deploymentId);
    if (!slot) {
      slot = this.#semaphore.acquire(signal);
      this.#held.set(deploymentId, slot);
      // an aborted wait must not leave a dead entry behind
      slot.catch(() => {
        if (this.#held.get(deploymentId) === slot) this.#held.delete(deploymentId);
      });
    }
    await slot;
  }

  leave(deploymentId: string): void {
    const slot = this.#held.get(deploymentId);
    if (!slot) return;
    this.#held.delete(deploymentId);
    slot.then((release) => release(), () => undefined);
  }
}
