import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, toApiError } from "./api/client";

export interface Loaded<T> {
  /** The latest data (kept while a refresh runs or after a failed one). */
  data: T | undefined;
  /** The last failure, cleared by the next success. */
  error: ApiError | undefined;
  /** True while a fetch runs. */
  loading: boolean;
  /** When the data last arrived (unix ms). */
  at: number | undefined;
  /** Fetches again now (or right after the fetch that is running: its answer may predate
   *  a change the caller just made). */
  refresh: () => void;
}

/**
 * Fetches `load()` now and every `everyMs` (paused while the tab is hidden); `deps` restart
 * it. A fetch never overlaps the previous one.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number | null, deps: unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [at, setAt] = useState<number | undefined>(undefined);
  const running = useRef(false);
  const again = useRef(false);
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const run = useCallback((queue: boolean) => {
    if (running.current) {
      if (queue) again.current = true;
      return;
    }
    running.current = true;
    const gen = generation.current;
    setLoading(true);
    loadRef
      .current()
      .then((d) => {
        if (gen !== generation.current) return;
        setData(d);
        setError(undefined);
        setAt(Date.now());
      })
      .catch((e: unknown) => {
        if (gen !== generation.current) return;
        setError(toApiError(e));
      })
      .finally(() => {
        running.current = false;
        if (gen !== generation.current) return;
        setLoading(false);
        if (again.current) {
          again.current = false;
          run(false);
        }
      });
  }, []);
  const refresh = useCallback(() => run(true), [run]);

  useEffect(() => {
    generation.current++;
    running.current = false;
    again.current = false;
    setData(undefined);
    setError(undefined);
    run(false);
    if (everyMs === null) return undefined;
    const timer = window.setInterval(() => {
      if (!document.hidden) run(false);
    }, everyMs);
    const onVisible = () => {
      if (!document.hidden) run(false);
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      window.clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [everyMs, ...deps]);

  return { data, error, loading, at, refresh };
}

/** The current time, ticking every `everyMs` (for "3 s ago"). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), everyMs);
    return () => window.clearInterval(t);
  }, [everyMs]);
  return now;
}

/** True when the viewport is at most `px` wide. */
export function useNarrow(px = 700): boolean {
  const q = `(max-width: ${px}px)`;
  const [narrow, setNarrow] = useState(() => window.matchMedia(q).matches);
  useEffect(() => {
    const m = window.matchMedia(q);
    const f = () => setNarrow(m.matches);
    m.addEventListener("change", f);
    return () => m.removeEventListener("change", f);
  }, [q]);
  return narrow;
}
