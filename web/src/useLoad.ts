import { useCallback, useEffect, useState } from "react";

import { ApiError } from "./api";

/** What a page loaded: the data, the error to show (a 401 is handed to `onError`, which signs out), and
 * a way to load it again. `every` reloads periodically. */
export function useLoad<T>(load: () => Promise<T>, onError: (e: unknown) => boolean, every?: number) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(
    () =>
      load().then(
        (d) => {
          setData(d);
          setError(null);
        },
        (e) => {
          if (!onError(e)) setError(e instanceof ApiError ? e.message : String(e));
        },
      ),
    [load, onError],
  );
  useEffect(() => {
    reload();
    if (!every) return;
    const timer = window.setInterval(reload, every);
    return () => window.clearInterval(timer);
  }, [reload, every]);
  return { data, error, reload, setError };
}

/** A date and time as the browser's locale writes it. */
export const when = (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleString() : "—");

/** A duration in ms as "850 ms" or "3.2 s". */
export const duration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
