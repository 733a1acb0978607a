import { useState } from "preact/hooks";
import { ApiError, api, call, toApiError } from "../api/client";
import { ErrorBox } from "../components/states";

export function Login({ notice, error, onSignedIn }: { notice?: string; error?: ApiError; onSignedIn: () => void }) {
  const [secret, setSecret] = useState("");
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiError | undefined>(error);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setFailure(undefined);
    try {
      await call(api.POST("/admin/v1/session", { body: { secret } }));
      setSecret("");
      onSignedIn();
    } catch (err) {
      setFailure(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="center">
      <form class="card login" onSubmit={submit}>
        <h1>
          <img src="/ui/favicon.svg" alt="" width="28" height="28" /> TierKV dashboard
        </h1>
        {notice && <p class="notice">{notice}</p>}
        <label for="secret">Cluster secret</label>
        <input
          id="secret"
          name="secret"
          type="password"
          autocomplete="current-password"
          value={secret}
          onInput={(e) => setSecret((e.currentTarget as HTMLInputElement).value)}
          required
          autofocus
        />
        <button type="submit" class="primary" disabled={busy || secret.length === 0}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {failure && <ErrorBox error={failure} />}
        <p class="hint">
          The secret is <code>cluster.secret</code> of this cluster (<code>tierkv dev</code> uses the development default, and prints a one-time sign-in link when it starts). The session lasts 12 hours.
        </p>
      </form>
    </div>
  );
}
