// Simulated time: starts at the real time and runs `timeScale` simulated seconds per real second.
// Changing the scale keeps time continuous.

export class SimClock {
  private baseSim: number;
  private baseReal: number;
  private scale: number;

  constructor(scale = 1, realNow: () => number = Date.now) {
    this.realNow = realNow;
    this.baseReal = realNow();
    this.baseSim = this.baseReal;
    this.scale = scale;
  }

  private readonly realNow: () => number;

  now(): number {
    return this.baseSim + (this.realNow() - this.baseReal) * this.scale;
  }

  get timeScale(): number {
    return this.scale;
  }

  setScale(scale: number): void {
    if (!(scale > 0)) throw new Error(`timeScale must be positive, got ${scale}`);
    this.baseSim = this.now();
    this.baseReal = this.realNow();
    this.scale = scale;
  }

  /** RFC 3339 with second precision, as Kubernetes writes metav1.Time. */
  timestamp(ms = this.now()): string {
    return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  }

  /** RFC 3339 with microseconds, as Kubernetes writes metav1.MicroTime (an event's eventTime). */
  microTimestamp(ms = this.now()): string {
    return new Date(Math.floor(ms)).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  }
}

export function parseTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** `5s`, `3m20s`, `2d4h` — the short ages kubectl shows (apimachinery duration.HumanDuration). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0) return '<invalid>';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (days < 365 * 2) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}
