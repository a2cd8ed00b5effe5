// Coalescing wake-ups: a notification, a rescan and a tick may all ask to wake one deployment
// at once. One run per key at a time; asks that arrive while it runs fold into ONE more run
// (it re-reads the row, so it sees everything they would have seen).
export class Coalescer {
  readonly #running = new Map<string, { again: boolean }>();

  async run(key: string, body: () => Promise<boolean | void>): Promise<void> {
    const running = this.#running.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.#running.set(key, state);
    try {
      do {
        state.again = false;
        // a body returning false is done for good (its actor is gone)
        if ((await body()) === false) return;
      } while (state.again);
    } finally {
      this.#running.delete(key);
    }
  }

  isRunning(key: string): boolean {
    return this.#running.has(key);
  }
}

/** A FIFO mutex: claims and adoptions run one at a time, so no deployment is hosted twice. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  async run<T>(body: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(body, body);
    this.#tail = result.catch(() => undefined);
    return await result;
  }
}
