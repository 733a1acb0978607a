// A tiny client-side router over /ui/<page> (the gateway serves index.html for them).
import { useEffect, useState } from "preact/hooks";

export const BASE = "/ui/";

export type Page = "overview" | "shards" | "keys" | "hotkeys" | "events" | "apikeys";

export const PAGES: { page: Page; path: string; label: string }[] = [
  { page: "overview", path: "", label: "Overview" },
  { page: "shards", path: "shards", label: "Shards" },
  { page: "keys", path: "keys", label: "Keys" },
  { page: "hotkeys", path: "hot-keys", label: "Hot keys" },
  { page: "events", path: "events", label: "Events" },
  { page: "apikeys", path: "api-keys", label: "API keys" },
];

export function pageOf(pathname: string): Page {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : "";
  const first = rest.split("/")[0] ?? "";
  return PAGES.find((p) => p.path === first)?.page ?? "overview";
}

export function hrefOf(page: Page): string {
  return BASE + (PAGES.find((p) => p.page === page)?.path ?? "");
}

export function navigate(href: string) {
  if (href === location.pathname + location.search) return;
  history.pushState(null, "", href);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** The current location (pathname + search), updated on navigation. */
export function useLocation(): { pathname: string; search: string } {
  const [loc, setLoc] = useState({ pathname: location.pathname, search: location.search });
  useEffect(() => {
    const f = () => setLoc({ pathname: location.pathname, search: location.search });
    window.addEventListener("popstate", f);
    return () => window.removeEventListener("popstate", f);
  }, []);
  return loc;
}

/** Click handler for in-app links: navigate without a reload (modifier clicks as usual). */
export function linkClick(e: MouseEvent) {
  const a = (e.currentTarget as HTMLAnchorElement | null) ?? null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href") ?? BASE);
}
