// The shell: sign-in (one-time link or cluster secret), navigation, the current page.
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, call, onUnauthorized, toApiError } from "./api/client";
import { Spinner } from "./components/states";
import { ApiKeys } from "./pages/apikeys";
import { Events } from "./pages/events";
import { HotKeysPage } from "./pages/hotkeys";
import { Keys } from "./pages/keys";
import { Login } from "./pages/login";
import { Overview } from "./pages/overview";
import { Shards } from "./pages/shards";
import { PAGES, hrefOf, linkClick, pageOf, useLocation } from "./router";

type Auth =
  | { state: "checking" }
  | { state: "signed-in" }
  | { state: "signed-out"; notice?: string; error?: ApiError };

/** The one-time token of a sign-in link (`/ui/#login=<token>`), removed from the address
 *  bar and history at once. */
function takeLoginToken(): string | null {
  const m = /^#login=([0-9a-f]+)$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return m[1] ?? null;
}

async function signInWithToken(token: string): Promise<void> {
  await call(api.POST("/admin/v1/session", { body: { token } }));
}

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: "checking" });
  const loc = useLocation();
  const page = pageOf(loc.pathname);

  useEffect(() => {
    const token = takeLoginToken();
    (async () => {
      if (token) {
        try {
          await signInWithToken(token);
        } catch (e) {
          const err = toApiError(e);
          setAuth({
            state: "signed-out",
            notice: err.status === 401 ? "This sign-in link was used already or has expired. Sign in with the cluster secret." : undefined,
            error: err.status === 401 ? undefined : err,
          });
          return;
        }
      }
      try {
        await call(api.GET("/admin/v1/session"));
        setAuth({ state: "signed-in" });
      } catch (e) {
        const err = toApiError(e);
        setAuth({ state: "signed-out", error: err.status === 401 ? undefined : err });
      }
    })();
    return onUnauthorized(() => setAuth({ state: "signed-out", notice: "Your session has ended. Sign in again." }));
  }, []);

  if (auth.state === "checking") {
    return (
      <div class="center">
        <Spinner label="Signing in…" />
      </div>
    );
  }
  if (auth.state === "signed-out") {
    return <Login notice={auth.notice} error={auth.error} onSignedIn={() => setAuth({ state: "signed-in" })} />;
  }

  const signOut = async () => {
    try {
      await call(api.DELETE("/admin/v1/session"));
    } finally {
      setAuth({ state: "signed-out", notice: "Signed out." });
    }
  };

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href={hrefOf("overview")} onClick={linkClick}>
          <img src="/ui/favicon.svg" alt="" width="22" height="22" />
          TierKV
        </a>
        <nav aria-label="Pages">
          {PAGES.map((p) => (
            <a key={p.page} href={hrefOf(p.page)} onClick={linkClick} class={p.page === page ? "active" : undefined} aria-current={p.page === page ? "page" : undefined}>
              {p.label}
            </a>
          ))}
        </nav>
        <button class="link signout" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        {page === "overview" && <Overview />}
        {page === "shards" && <Shards />}
        {page === "keys" && <Keys search={loc.search} />}
        {page === "hotkeys" && <HotKeysPage />}
        {page === "events" && <Events />}
        {page === "apikeys" && <ApiKeys />}
      </main>
    </div>
  );
}
