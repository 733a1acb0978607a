// The dashboard against a cluster of real processes (three nodes, one gateway): every page
// renders real data; keys written through the API appear in the browser; puts and deletes
// made in the browser are visible through the API; an API key created in the browser works
// on the API until it is revoked in the browser; a leader killed with SIGKILL shows on the
// overview and the events page. Screenshots of every page at 1280 px and phone width go to
// target/ui-screenshots/.
import { type BrowserContext, type Page, expect, test } from "@playwright/test";
import { Cluster, DESKTOP, PHONE, shot, until } from "./support";

test.describe.configure({ mode: "serial" });

const SHARDS = 64;
let cluster: Cluster;
let context: BrowserContext;
let page: Page;
/** Script errors and console errors (CSP violations among them) seen by the page. */
const problems: string[] = [];

test.beforeAll(async ({ browser }) => {
  cluster = await Cluster.start(SHARDS);
  context = await browser.newContext({ viewport: DESKTOP, baseURL: cluster.url });
  page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // Answers with an error status (401, 404, 412) are expected in some tests.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
  });
  // Sign in the way the form does (the form itself is tested against `tierkv dev`).
  const r = await page.request.post("/admin/v1/session", { data: { secret: cluster.secret } });
  expect(r.status()).toBe(204);
});

test.afterEach(() => {
  expect(problems, "no script errors, no CSP violations").toEqual([]);
});

test.afterAll(async () => {
  await context?.close();
  cluster?.stop();
});

/** The public API with the cluster secret, which is an `admin` credential (design note 0012). */
async function api(path: string, init?: RequestInit): Promise<Response> {
  const headers = new Headers(init?.headers);
  headers.set("authorization", `Bearer ${cluster.secret}`);
  return fetch(`${cluster.url}${path}`, { ...init, headers });
}

async function bothWidths(name: string, check?: () => Promise<void>) {
  await shot(page, `${name}-desktop`);
  await page.setViewportSize(PHONE);
  if (check) await check();
  await shot(page, `${name}-phone`);
  await page.setViewportSize(DESKTOP);
}

test("overview: health, members, leaders, live traffic", async () => {
  // Some traffic for the charts: writes and reads of the API.
  for (let i = 0; i < 40; i++) {
    const put = await api(`/v1/kv/warm/${i}`, { method: "PUT", body: `v${i}` });
    expect(put.status).toBe(201);
    await api(`/v1/kv/warm/${i}`);
  }
  await api("/v1/kv/warm/missing");
  await page.goto("/ui/");
  await expect(page.getByTestId("health")).toContainText("Healthy");
  await expect(page.getByTestId("members-up")).toContainText("3 / 3");
  const members = page.getByTestId("members").locator("tbody tr");
  await expect(members).toHaveCount(3);
  for (const id of [1, 2, 3]) await expect(page.locator(`tr[data-node="${id}"]`)).toContainText("up");
  await expect(page.getByTestId("leaders")).toContainText(`${SHARDS} / ${SHARDS}`);
  // The bars add up to every shard.
  const values = await page.getByTestId("leader-bars").locator(".bar-value").allInnerTexts();
  expect(values.map(Number).reduce((a, b) => a + b, 0)).toBe(SHARDS);
  // Two traffic samples (every 2 s) make the first point; ours shows in it.
  await expect(page.locator(".chart")).toHaveCount(3, { timeout: 20_000 });
  await expect(page.getByText(/now [\d.]+ req\/s/)).toBeVisible();
  await expect(page.getByTestId("nodes").locator("tbody tr")).toHaveCount(3);
  await expect(page.getByTestId("nodes")).toContainText("KiB");
  await bothWidths("overview");
});

test("shards: every shard with its replicas, sortable, heat strip", async () => {
  await page.goto("/ui/shards");
  const rows = page.getByTestId("shards-table").locator("tbody tr");
  await expect(rows).toHaveCount(SHARDS);
  await expect(page.getByTestId("heat-strip").locator(".cell")).toHaveCount(SHARDS);
  // Each shard: one leader chip among three replicas.
  const first = rows.first();
  await expect(first.locator(".chip")).toHaveCount(3);
  await expect(first.locator(".chip.role-leader")).toHaveCount(1);
  // Load, uneven across shards, while the page watches (two readings a second apart give
  // the first figures).
  let loading = true;
  const load = (async () => {
    for (let i = 0; loading; i++) {
      await api(`/v1/kv/warm/${i % 40}`);
      if (i % 3 === 0) await api(`/v1/kv/hot`, { method: "PUT", body: String(i) });
    }
  })();
  await expect(page.getByText("operations per second over the last 10 s")).toBeVisible({ timeout: 20_000 });
  await expect
    .poll(async () => page.getByTestId("heat-strip").locator(".cell").evaluateAll((cells) => cells.filter((c) => (c as HTMLElement).style.backgroundColor !== "rgb(226, 236, 248)").length), { timeout: 20_000 })
    .toBeGreaterThan(5);
  // Sorting by shard, descending: the last shard first.
  await page.getByRole("button", { name: /^Shard/ }).click();
  await expect(rows.first().locator("td").first()).toHaveText(String(SHARDS - 1));
  await page.getByRole("button", { name: /^Shard/ }).click();
  await expect(rows.first().locator("td").first()).toHaveText("0");
  await bothWidths("shards");
  loading = false;
  await load;
});

test("keys: what the API wrote shows in the browser, binary values as hex", async () => {
  const put = await api("/v1/kv/user%2Falice", { method: "PUT", headers: { "content-type": "application/json" }, body: '{"name":"Alice"}' });
  expect(put.status).toBe(201);
  const version = Number((put.headers.get("etag") ?? "").replaceAll('"', ""));
  await api("/v1/kv/user%2Fbob?ttl=3600", { method: "PUT", headers: { "content-type": "text/plain" }, body: "Bob" });
  await api("/v1/kv/user%2Fblob", { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: new Uint8Array([0, 1, 2, 0xff, 0xfe]) });
  await api("/v1/kv/user%2F%FF%00", { method: "PUT", body: "binary key" });

  await page.goto("/ui/keys");
  await page.getByLabel("Prefix").fill("user/");
  await page.getByRole("button", { name: "Browse" }).click();
  const table = page.getByTestId("keys-table");
  await expect(table.locator("tbody tr")).toHaveCount(4);
  await expect(table).toContainText("user/alice");
  await expect(table).toContainText("bytes");

  await table.getByRole("button", { name: "user/alice" }).click();
  const detail = page.getByTestId("key-detail");
  await expect(detail.getByTestId("version")).toHaveText(String(version));
  await expect(detail.getByTestId("value")).toHaveText('{"name":"Alice"}');
  await expect(detail).toContainText("application/json");
  await expect(detail).toContainText(`"${version}"`);

  await table.getByRole("button", { name: "user/bob" }).click();
  await expect(detail.getByTestId("value")).toHaveText("Bob");
  await expect(detail).toContainText(/in (59|60) min/);

  await table.getByRole("button", { name: "user/blob" }).click();
  await expect(detail.getByTestId("value")).toContainText("00 01 02 ff fe");
  await page.getByRole("tab", { name: "base64" }).click();
  await expect(detail.getByTestId("value")).toHaveText("AAEC//4=");
  await bothWidths("keys");
});

test("keys: a put and a delete in the browser are visible through the API", async () => {
  await page.goto("/ui/keys?prefix=user%2F&key=user%2Falice");
  const detail = page.getByTestId("key-detail");
  await expect(detail.getByTestId("value")).toHaveText('{"name":"Alice"}');
  await detail.getByLabel("Value").fill('{"name":"Alice","admin":true}');
  await detail.getByRole("button", { name: "Save" }).click();
  await expect(detail.locator(".toast")).toContainText("Saved: version");
  const got = await api("/v1/kv/user%2Falice");
  expect(await got.text()).toBe('{"name":"Alice","admin":true}');
  await expect(detail.getByTestId("version")).toHaveText((got.headers.get("etag") ?? "").replaceAll('"', ""));

  // Someone else writes meanwhile: the browser's If-Match fails with the API's detail.
  await api("/v1/kv/user%2Falice", { method: "PUT", body: "changed elsewhere" });
  await detail.getByLabel("Value").fill("stale edit");
  await detail.getByRole("button", { name: "Save" }).click();
  await expect(detail.getByRole("alert")).toContainText("precondition_failed");
  expect(await (await api("/v1/kv/user%2Falice")).text()).toBe("changed elsewhere");

  // Delete (after reloading the current version).
  await page.reload();
  await expect(detail.getByTestId("value")).toHaveText("changed elsewhere");
  page.once("dialog", (d) => d.accept());
  await detail.getByRole("button", { name: "Delete" }).click();
  await expect(page.getByText("This key has no live value")).toBeVisible();
  expect((await api("/v1/kv/user%2Falice")).status).toBe(404);

  // Create with a TTL, only if absent.
  await page.getByRole("button", { name: "New key" }).click();
  const form = page.getByTestId("create-key");
  await form.getByLabel("Key", { exact: true }).fill("user/carol");
  await form.getByLabel("Value").fill("Carol");
  await form.getByLabel("TTL (s)").fill("120");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(detail.getByTestId("value")).toHaveText("Carol");
  const carol = await api("/v1/kv/user%2Fcarol");
  expect(await carol.text()).toBe("Carol");
  const expires = Number(carol.headers.get("x-tierkv-expires-at"));
  expect(expires - Date.now()).toBeGreaterThan(100_000);
  expect(expires - Date.now()).toBeLessThanOrEqual(121_000);
  // Creating it again is refused (If-None-Match: *).
  await page.getByRole("button", { name: "New key" }).click();
  await form.getByLabel("Key", { exact: true }).fill("user/carol");
  await form.getByLabel("Value").fill("again");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(form.getByRole("alert")).toContainText("precondition_failed");
});

test("hot keys: the keys read and written through the API, with the cache's hit ratios", async () => {
  // A key written five times and read eight times (strong reads revalidate: the memory tier hits).
  for (let i = 0; i < 5; i++) {
    expect((await api("/v1/kv/hot%2Fkey", { method: "PUT", body: `v${i}` })).ok).toBe(true);
  }
  for (let i = 0; i < 8; i++) {
    expect(await (await api("/v1/kv/hot%2Fkey")).text()).toBe("v4");
  }
  await page.goto("/ui/hot-keys");
  const reads = page.getByTestId("hot-reads");
  const writes = page.getByTestId("hot-writes");
  await expect(reads.locator("tbody")).toContainText("hot/key");
  await expect(writes.locator("tbody")).toContainText("hot/key");
  await expect(page.getByTestId("cache-tier-memory")).toContainText("hit ratio");
  await expect(page.getByText("This gateway does not track hot keys")).toHaveCount(0);
  await bothWidths("hotkeys");
});

test("events: node starts and leaderships", async () => {
  await page.goto("/ui/events");
  const table = page.getByTestId("events-table");
  await expect(table.locator('tr[data-kind="became_leader"]').first()).toBeVisible();
  // The oldest events may be past the first page: filter.
  await page.getByLabel("Kind", { exact: true }).selectOption("node_started");
  await expect(table.locator("tbody tr")).toHaveCount(3);
  await expect(table.locator('tr[data-kind="node_started"]')).toHaveCount(3);
  await page.getByLabel("Kind", { exact: true }).selectOption("");
  await bothWidths("events");
});

test("API keys: created in the browser, shown once, listed without the secret, usable, revoked", async () => {
  const keysUrl = (key: string) => `${cluster.url}/v1/kv/${encodeURIComponent(key)}`;
  await page.goto("/ui/api-keys");
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
  // Processes started as `tierkv node` and `tierkv gateway` make no key of their own.
  await expect(page.getByText("No API keys yet")).toBeVisible();
  await shot(page, "apikeys-empty-desktop");

  // The form checks what the server would refuse, next to the field.
  const form = page.getByTestId("create-api-key");
  const create = form.getByRole("button", { name: "Create key" });
  await create.click();
  await expect(form.locator("#apikey-name-error")).toContainText("Give the key a name");
  await expect(form.getByLabel("Name", { exact: true })).toBeFocused();
  await form.getByLabel("Name", { exact: true }).fill("orders service");
  await form.getByLabel("Role", { exact: true }).selectOption("admin");
  await form.getByLabel("Prefixes", { exact: true }).fill("orders/");
  await create.click();
  await expect(form.locator("#apikey-prefixes-error")).toContainText("An admin key reaches every key");
  await expect(form.getByLabel("Prefixes", { exact: true })).toBeFocused();
  await shot(page, "apikeys-invalid-desktop");
  let all = await (await api("/admin/v1/keys")).json();
  expect(all.keys).toEqual([]);

  // Created: the key is shown once, in a box that says so.
  await form.getByLabel("Role", { exact: true }).selectOption("write");
  await form.getByLabel("Prefixes", { exact: true }).fill(" orders/, carts/ ,");
  await create.click();
  const box = page.getByTestId("new-key");
  await expect(box).toContainText("it is shown only once");
  await expect(box.getByTestId("new-key-value")).toBeFocused();
  const key = await box.getByTestId("new-key-value").inputValue();
  expect(key).toMatch(/^tkv_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: cluster.url });
  await box.getByRole("button", { name: "Copy" }).click();
  await expect(box.getByRole("status")).toHaveText("Copied to the clipboard.");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  const id = key.slice(4, 20);
  const secret = key.slice(21);
  const row = page.locator(`tr[data-key-id="${id}"]`);
  await expect(row).toContainText("orders service");
  await expect(row.locator("td").nth(2)).toHaveText("write");
  await expect(row.locator("td").nth(3).locator(".chip")).toHaveText(["orders/", "carts/"]);
  await expect(row.locator("td").nth(5)).toHaveText("never");
  await expect(page.getByTestId("api-keys-table")).not.toContainText(secret);
  await bothWidths("apikeys-created");
  all = await (await api("/admin/v1/keys")).json();
  expect(all.keys).toEqual([expect.objectContaining({ id, name: "orders service", role: "write", prefixes: ["orders/", "carts/"] })]);
  expect(JSON.stringify(all)).not.toContain(secret);

  // The key works on the public API, inside its prefixes only.
  const bearer = { authorization: `Bearer ${key}` };
  expect((await fetch(keysUrl("orders/1"), { method: "PUT", headers: bearer, body: "one" })).status).toBe(201);
  const got = await fetch(keysUrl("orders/1"), { headers: bearer });
  expect(got.status).toBe(200);
  expect(await got.text()).toBe("one");
  expect((await fetch(keysUrl("users/1"), { headers: bearer })).status).toBe(403);

  // Dismissed, the key is gone from the page for good; the list shows its use.
  await box.getByRole("button", { name: "Done: I have stored it" }).click();
  await expect(box).toHaveCount(0);
  await expect(form.getByLabel("Name", { exact: true })).toBeFocused();
  for (const [name, role, prefixes] of [
    ["analytics", "read", ["events/"]],
    ["operator", "admin", []],
  ] as const) {
    const r = await api("/admin/v1/keys", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, role, prefixes }) });
    expect(r.status).toBe(201);
  }
  await page.reload();
  await expect(page.getByTestId("api-keys-table").locator("tbody tr")).toHaveCount(3);
  await expect(row.locator("td").nth(5)).toHaveText(/^(just now|\d+ s ago)$/);
  expect(await page.content()).not.toContain(secret);
  await bothWidths("apikeys");

  // Revoking asks first (Escape cancels), by keyboard alone.
  const revoke = row.getByRole("button", { name: `Revoke orders service (${id})` });
  await revoke.focus();
  await page.keyboard.press("Enter");
  const confirm = page.getByTestId("confirm-revoke");
  await expect(confirm).toContainText("This cannot be undone");
  await expect(confirm.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(confirm).toHaveCount(0);
  await expect(revoke).toBeFocused();
  expect((await fetch(keysUrl("orders/1"), { headers: bearer })).status).toBe(200);
  await page.keyboard.press("Enter");
  await shot(page, "apikeys-confirm-desktop");
  await page.keyboard.press("Shift+Tab");
  await expect(confirm.getByRole("button", { name: "Revoke key" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator(".toast")).toContainText(`Revoked “orders service” (${id})`);
  await expect(row).toHaveCount(0);
  // Refused from now on (this gateway adopts the change at once; others within ~1 s).
  await until("the revoked key to be refused", 5_000, async () => ((await fetch(keysUrl("orders/1"), { headers: bearer })).status === 401 ? true : undefined));
  all = await (await api("/admin/v1/keys")).json();
  expect(all.keys.map((k: { id: string }) => k.id)).not.toContain(id);

  // A key revoked elsewhere while the page still lists it (its list reads held back, so
  // that no poll removes the row first): the API's problem detail shows.
  const gone = page.locator("tbody tr", { hasText: "analytics" });
  const goneId = await gone.getAttribute("data-key-id");
  await page.route("**/admin/v1/keys", (r) => (r.request().method() === "GET" ? r.abort() : r.continue()));
  expect((await api(`/admin/v1/keys/${goneId}`, { method: "DELETE" })).status).toBe(204);
  await gone.getByRole("button", { name: /^Revoke analytics/ }).click();
  await confirm.getByRole("button", { name: "Revoke key" }).click();
  await expect(page.getByRole("alert")).toContainText("not_found");
  await expect(page.getByRole("alert")).toContainText("HTTP 404");
  await page.unroute("**/admin/v1/keys");
  await page.reload();
  await expect(page.getByTestId("api-keys-table").locator("tbody tr")).toHaveCount(1);
  await expect(gone).toHaveCount(0);
});

test("a leader killed with SIGKILL shows on the overview and the events page", async () => {
  const { node: victim, shards: led } = await cluster.busiestLeader();
  expect(led.length).toBeGreaterThan(0);
  const killedAt = Date.now();
  cluster.kill(victim);

  await page.goto("/ui/");
  const row = page.locator(`tr[data-node="${victim}"]`);
  await expect(row).toContainText("down", { timeout: 20_000 });
  await expect(page.getByTestId("members-up")).toContainText("2 / 3");
  await expect(page.getByTestId("health")).toContainText(/Degraded|Unavailable/);
  await expect(page.getByTestId("health")).toContainText(`node ${victim} does not answer`);
  // The other replicas take the shards over (lease + ~0.5 s each).
  await expect(page.getByTestId("leaders")).toContainText(`${SHARDS} / ${SHARDS}`, { timeout: 30_000 });
  await expect(page.getByTestId("health")).toContainText("Degraded");
  await bothWidths("overview-after-kill");

  await page.goto("/ui/events");
  const table = page.getByTestId("events-table");
  await expect(table.locator('tr[data-kind="member_down"]').first()).toContainText(`node ${victim} stopped answering`);
  await expect(page.getByText(`No events from node ${victim}`)).toBeVisible();
  // Every shard the victim led has a new leader that recorded it, after the kill.
  const events = await until("takeovers of every shard the victim led", 30_000, async () => {
    const { events } = await cluster.admin<{ events: { kind: string; shard: number | null; at_ms: number; peer: number | null }[] }>("/admin/v1/events?limit=1000");
    const taken = new Set(events.filter((e) => e.kind === "became_leader" && e.at_ms >= killedAt - 1000).map((e) => e.shard));
    return led.every((s) => taken.has(s)) ? events : undefined;
  });
  expect(events.some((e) => e.kind === "became_leader" && e.peer === victim)).toBe(true);
  await page.getByLabel("Kind", { exact: true }).selectOption("became_leader");
  await expect(table.locator("tbody tr", { hasText: `previous leader: node ${victim}` }).first()).toBeVisible();
  await page.getByLabel("Kind", { exact: true }).selectOption("");
  await bothWidths("events-after-kill");

  await page.goto("/ui/shards");
  await expect(page.getByTestId("shards-table").locator(".chip.role-down")).toHaveCount(SHARDS, { timeout: 15_000 });
  await bothWidths("shards-after-kill");
});
