// Sizes as operators write them and as messages show them: binary units, as Kubernetes uses.

const UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, Ki: 1024, MiB: 1024 ** 2, Mi: 1024 ** 2, GiB: 1024 ** 3, Gi: 1024 ** 3 };

/** "512KiB", "10MiB", "1Gi" or a bare number of bytes → bytes; undefined for anything else. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(text.trim());
  const factor = match ? UNITS[match[2] ?? ''] : undefined;
  if (!match || factor === undefined) return undefined;
  return Math.round(Number(match[1]) * factor);
}

/** `10 MiB`, `512 KiB`, `300 B`: the largest unit that divides the size exactly. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}
