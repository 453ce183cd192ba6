// Reads one sample from a Prometheus text exposition: the series with exactly these labels, in
// whatever order the exporter wrote them. Undefined when the series is absent.
export function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  for (const line of exposition.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!] as const).sort(([a], [b]) => a.localeCompare(b));
    if (got.length === want.length && got.every(([k, v], i) => want[i]![0] === k && want[i]![1] === v)) return Number(m[3]);
  }
  return undefined;
}
