import { useCallback, useEffect, useState } from 'react';
import { ApiError } from './api';

/** Runs `load` now and whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  // `load` changes with `deps` only (the caller's closure), as useCallback's contract says.
  const run = useCallback(load, deps);
  const reload = useCallback(() => {
    run().then(
      (value) => {
        setData(value);
        setError(null);
      },
      (failure: unknown) =>
        setError(failure instanceof ApiError ? failure : new ApiError([{ message: String(failure) }])),
    );
  }, [run]);
  useEffect(reload, [reload]);
  return { data, setData, error, reload };
}

export function ErrorNote({ error }: { error: ApiError | null }) {
  if (!error) return null;
  const signIn = error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN';
  return (
    <p className="error" role="alert">
      {error.message}
      {error.code ? ` (${error.code})` : ''}
      {signIn ? ' Sign in with a token that may do this (top right).' : ''}
    </p>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`status status-${status.toLowerCase()}`}>{status}</span>;
}

/** progress in 0..1 (null: none reported yet). */
export function ProgressBar({ progress, label }: { progress: number | null | undefined; label: string }) {
  const percent = Math.round(Math.min(1, Math.max(0, progress ?? 0)) * 100);
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={percent}
    >
      <div className="progress-fill" style={{ width: `${percent}%` }} />
      <span className="progress-text">{percent}%</span>
    </div>
  );
}

/** Two lines (p50 and p95) over the buckets, scaled to the largest value. */
export function Sparkline({ points, label }: { points: { p50: number; p95: number }[]; label: string }) {
  const width = 120;
  const height = 28;
  if (points.length === 0) return <span className="muted">no runs in the last hour</span>;
  const max = Math.max(...points.map((point) => point.p95), 1);
  const line = (pick: (point: { p50: number; p95: number }) => number) =>
    points
      .map((point, index) => {
        const x = points.length === 1 ? width / 2 : (index / (points.length - 1)) * width;
        const y = height - (pick(point) / max) * (height - 2) - 1;
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      })
      .join(' ');
  return (
    <svg className="sparkline" width={width} height={height} role="img" aria-label={label}>
      <polyline points={line((point) => point.p95)} className="p95" />
      <polyline points={line((point) => point.p50)} className="p50" />
    </svg>
  );
}

export const formatTime = (iso: string | null | undefined) =>
  iso ? new Date(iso).toLocaleTimeString() : '–';

export const formatJson = (value: unknown) =>
  value === undefined || value === null ? '–' : JSON.stringify(value, null, 2);
