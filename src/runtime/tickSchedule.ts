// The tick's schedule: which hosted actors a TICK can change, by the time it can (the machine's
// tickDueAt). Ten thousand resting actors were scanned every tick to find the few whose drift
// check was due; the schedule hands the tick only those. Pure data, no clock: the runtime passes
// `now`, and sets an actor's due time whenever its snapshot changes (nothing else changes it).
//
// A min-heap of (due, id, version) with lazy deletion: setting or deleting an actor only bumps its
// version in the map, and a popped entry whose version is not the actor's current one is stale and
// skipped. Setting the due time an actor already has pushes nothing, so a snapshot that does not
// move the due time (most of them) costs a map lookup.

interface Entry {
  readonly due: number;
  readonly id: string;
  readonly version: number;
}

export class TickSchedule {
  /** the live entry per scheduled actor; an actor that no TICK can change (due null) has none */
  readonly #live = new Map<string, Entry>();
  readonly #heap: Entry[] = [];
  #version = 0;

  /** Schedules an actor from `due` on (-Infinity: every tick), or not at all (null), replacing what it had. */
  set(id: string, due: number | null): void {
    const live = this.#live.get(id);
    if (due === null) {
      this.#live.delete(id);
      return;
    }
    if (live && live.due === due) return;
    const entry: Entry = { due, id, version: ++this.#version };
    this.#live.set(id, entry);
    this.#push(entry);
  }

  delete(id: string): void {
    this.#live.delete(id);
  }

  /** the actor's due time, null when it is not scheduled */
  dueOf(id: string): number | null {
    return this.#live.get(id)?.due ?? null;
  }

  get size(): number {
    return this.#live.size;
  }

  /**
   * Takes the actors due at `now` (due ≤ now) out of the schedule, earliest first, each once.
   * The caller sends their TICK and sets each one's due time again from its snapshot after it:
   * one in flight (due -Infinity) stays due at every tick that way, and one the TICK left as it
   * was keeps its time.
   */
  takeDue(now: number): string[] {
    const due: string[] = [];
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]!.due <= now) {
      const entry = this.#pop();
      if (this.#live.get(entry.id) !== entry) continue; // stale: re-set or deleted since
      this.#live.delete(entry.id);
      due.push(entry.id);
    }
    // an actor set to another time before its earlier one came (a HEALTH event moves a drift
    // check) leaves a stale entry until that time: rebuild when they are most of the heap
    if (heap.length > 64 && heap.length > 4 * this.#live.size) this.#rebuild();
    return due;
  }

  #rebuild(): void {
    const heap = this.#heap;
    heap.length = 0;
    for (const entry of this.#live.values()) this.#push(entry);
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.due <= entry.due) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): Entry {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right]!.due < heap[left]!.due ? right : left;
        if (heap[child]!.due >= last.due) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
