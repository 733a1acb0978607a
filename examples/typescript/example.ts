// TierKV from TypeScript with the generated client (clients/typescript): put a value, read
// it back with its ETag, compare-and-swap with If-Match (and see the 412 a stale ETag gets),
// list a prefix.
//
// Usage (Node 20+): build the client (`npm ci && npm run build` in clients/typescript), then
// here `npm ci && npm run build && node dist/example.js [BASE_URL]` (default
// http://127.0.0.1:8080, e.g. against `tierkv dev`), with the API key in TIERKV_API_KEY
// (`tierkv dev` prints one: `admin key: tkv_...`). Exits non-zero when the server does not
// behave as shown.
import { randomBytes } from "node:crypto";
import { tierkvClient } from "tierkv-client";

function expect(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`example failed: ${what}`);
    process.exit(1);
  }
}

const apiKey = process.env.TIERKV_API_KEY;
expect(apiKey !== undefined && apiKey !== "", "set TIERKV_API_KEY to an API key");
const api = tierkvClient(process.argv[2] ?? "http://127.0.0.1:8080", { apiKey });
const prefix = `example-ts/${randomBytes(4).toString("hex")}/`;
const key = `${prefix}greeting`;

// Values are raw bytes with their Content-Type: send the text as it is.
async function put(k: string, value: string, ifMatch?: string) {
  return api.PUT("/v1/kv/{key}", {
    params: { path: { key: k }, header: ifMatch ? { "If-Match": ifMatch } : {} },
    body: value,
    bodySerializer: (b: unknown) => b as string,
    headers: { "Content-Type": "text/plain" },
  });
}

// Put: 201 Created, the version as ETag.
const created = await put(key, "hello");
expect(created.response.status === 201, `PUT answered ${created.response.status}`);
const etag = created.response.headers.get("etag") ?? "";
console.log(`put ${key} -> ${created.response.status}, ETag ${etag}`);

// Get: the value and the same ETag.
const got = await api.GET("/v1/kv/{key}", { params: { path: { key } }, parseAs: "text" });
expect(got.response.status === 200 && got.data === "hello", `GET answered ${got.response.status} ${String(got.data)}`);
expect(got.response.headers.get("etag") === etag, "GET's ETag differs from PUT's");
console.log(`get ${key} -> ${JSON.stringify(got.data)}, ETag ${got.response.headers.get("etag")}`);

// Compare-and-swap: write only if the version is still the one read.
const swapped = await put(key, "hello again", etag);
expect(swapped.response.status === 200, `CAS with the current ETag answered ${swapped.response.status}`);
console.log(`CAS with If-Match ${etag} -> ${swapped.response.status}, new ETag ${swapped.response.headers.get("etag")}`);

// The old ETag is stale now: 412 precondition_failed, nothing written.
const stale = await put(key, "lost update", etag);
expect(stale.response.status === 412, `CAS with a stale ETag answered ${stale.response.status}`);
expect(stale.error?.code === "precondition_failed", `412 without a precondition_failed problem: ${JSON.stringify(stale.error)}`);
console.log(`CAS with stale If-Match ${etag} -> 412 ${stale.error?.code}`);

// List the prefix.
await put(`${prefix}other`, "x");
const page = await api.GET("/v1/kv", { params: { query: { prefix } } });
expect(page.data !== undefined, `list answered ${page.response.status}`);
const keys = (page.data?.items ?? []).map((i) => i.key);
expect(JSON.stringify(keys) === JSON.stringify([`${prefix}greeting`, `${prefix}other`]), `listed ${JSON.stringify(keys)}`);
console.log(`list ${prefix} -> ${JSON.stringify(keys)}`);
