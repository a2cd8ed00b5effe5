// The two queues that drive the simulated controllers, as controller-runtime's are: a work queue
// of object keys fed from store events (a key queued twice before it is worked on is worked on
// once), and a timer queue for work that is due at a simulated time (a pod that becomes ready
// after its start-up delay, a progress deadline) — a binary heap, so a tick looks at its head
// only instead of passing over every object. Pure: no timers, no store.

/** Keys to work on, in the order first queued, each at most once until taken. */
export class WorkQueue<K> {
  private pending = new Set<K>();

  add(key: K): void {
    this.pending.add(key);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Every queued key; keys added while they are worked on queue again for the next round. */
  take(): K[] {
    if (this.pending.size === 0) return [];
    const keys = [...this.pending];
    this.pending = new Set();
    return keys;
  }
}

interface Timer<K> {
  readonly at: number;
  readonly key: K;
}

/**
 * Keys due at a time. A key scheduled again keeps its earliest time (the work it stands for looks
 * at the whole object when it runs, and schedules itself again if more is due later); entries
 * superseded by an earlier time stay in the heap and are skipped when they surface.
 */
export class TimerQueue<K> {
  private readonly heap: Timer<K>[] = [];
  private readonly due = new Map<K, number>();

  get size(): number {
    return this.due.size;
  }

  /** The earliest due time, or undefined when nothing is scheduled. */
  get next(): number | undefined {
    this.dropStale();
    return this.heap[0]?.at;
  }

  schedule(key: K, at: number): void {
    const current = this.due.get(key);
    if (current !== undefined && current <= at) return;
    this.due.set(key, at);
    this.push({ at, key });
  }

  /** Removes and returns the keys due at or before `now`, earliest first. */
  popDue(now: number): K[] {
    const out: K[] = [];
    for (;;) {
      this.dropStale();
      const head = this.heap[0];
      if (!head || head.at > now) return out;
      this.pop();
      this.due.delete(head.key);
      out.push(head.key);
    }
  }

  private dropStale(): void {
    while (this.heap.length > 0 && this.due.get(this.heap[0]!.key) !== this.heap[0]!.at) this.pop();
  }

  private push(timer: Timer<K>): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= h[i]!.at) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < h.length && h[l]!.at < h[smallest]!.at) smallest = l;
      if (r < h.length && h[r]!.at < h[smallest]!.at) smallest = r;
      if (smallest === i) return;
      [h[smallest], h[i]] = [h[i]!, h[smallest]!];
      i = smallest;
    }
  }
}
