// Loading, error and empty states shared by every page.
import type { ComponentChildren } from "preact";
import type { ApiError } from "../api/client";

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div class="state loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

/** The API's problem+json detail, with its code and status. */
export function ErrorBox({ error, what }: { error: ApiError; what?: string }) {
  return (
    <div class="state error" role="alert">
      <strong>{what ? `Could not load ${what}` : error.title || "Request failed"}</strong>
      <span class="detail">{error.detail}</span>
      <span class="code">
        {error.code}
        {error.status ? ` · HTTP ${error.status}` : ""}
      </span>
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="state empty">
      <strong>{title}</strong>
      {children && <span class="detail">{children}</span>}
    </div>
  );
}

/** What a section shows while it has no data yet: spinner or error. */
export function Pending({ error, what }: { error: ApiError | undefined; what: string }) {
  return error ? <ErrorBox error={error} what={what} /> : <Spinner label={`Loading ${what}…`} />;
}

/** A small "refreshing / last updated / stale" line for polled sections. */
export function Freshness({ loading, error, at, now }: { loading: boolean; error: ApiError | undefined; at: number | undefined; now: number }) {
  if (error && at !== undefined) {
    return (
      <span class="fresh stale" title={error.detail}>
        ⚠ update failed: {error.detail}
      </span>
    );
  }
  return (
    <span class="fresh">
      {loading ? <span class="dot-pulse" aria-label="refreshing" /> : null}
      {at !== undefined ? `updated ${Math.max(0, Math.round((now - at) / 1000))} s ago` : ""}
    </span>
  );
}
