// Number, size and time formatting for the dashboard.

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function num(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return n.toLocaleString("en-US");
}

export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  if (n === 0) return "0";
  if (n < 10) return n.toFixed(1);
  return Math.round(n).toLocaleString("en-US");
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return n < 10 ? `${n.toFixed(2)} ms` : `${Math.round(n)} ms`;
}

export function percent(r: number | null | undefined): string {
  if (r === null || r === undefined) return "—";
  return `${(r * 100).toFixed(r >= 0.995 || r === 0 ? 0 : 1)} %`;
}

/** "3 s ago", "2 min ago", "in 5 min" relative to `now` (unix ms). */
export function ago(t: number | null | undefined, now: number): string {
  if (t === null || t === undefined) return "never";
  const d = Math.round((now - t) / 1000);
  const abs = Math.abs(d);
  const s =
    abs < 1 ? "now" : abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.floor(abs / 60)} min` : abs < 86400 ? `${Math.floor(abs / 3600)} h` : `${Math.floor(abs / 86400)} d`;
  if (s === "now") return "just now";
  return d >= 0 ? `${s} ago` : `in ${s}`;
}

/** Local wall-clock time with milliseconds. */
export function clock(t: number): string {
  const d = new Date(t);
  const p = (x: number, n = 2) => String(x).padStart(n, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function dateTime(t: number): string {
  const d = new Date(t);
  return `${d.toLocaleDateString("en-CA")} ${clock(t)}`;
}

/** A duration in seconds as "1 h 2 min", "45 s". */
export function duration(secs: number): string {
  if (secs < 60) return `${Math.max(0, Math.round(secs))} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${Math.round(secs % 60)} s`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
  return `${Math.floor(secs / 86400)} d ${Math.floor((secs % 86400) / 3600)} h`;
}
