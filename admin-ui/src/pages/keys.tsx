// The key browser: list by prefix with paging, one key's value with its version, ETag, TTL
// and content type, put (If-Match) / delete (If-Match) / create (If-None-Match: *, TTL).
import { useEffect, useState } from "preact/hooks";
import {
  ApiError,
  api,
  base64ToBytes,
  bytesToBase64,
  bytesToText,
  call,
  escapeBytes,
  hexOf,
  keyBytes,
  keyPath,
  textToBytes,
  toApiError,
  type Encoding,
  type ListItem,
  type ListPage,
} from "../api/client";
import { Empty, ErrorBox, Spinner } from "../components/states";
import * as f from "../format";
import { useNow, usePoll } from "../hooks";
import { hrefOf } from "../router";

const PAGE_SIZE = 25;

interface KeyRef {
  key: string;
  encoding: Encoding;
}

interface Cursor {
  after: string;
  encoding: Encoding;
}

function sameKey(a: KeyRef | null, b: KeyRef | null) {
  return !!a && !!b && a.key === b.key && a.encoding === b.encoding;
}

/** How a key reads: its text, or `base64:…` for bytes that are not UTF-8. */
function keyLabel(k: KeyRef): string {
  return k.encoding === "base64" ? `base64:${k.key}` : k.key;
}

function setSearch(params: Record<string, string | undefined>) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", hrefOf("keys") + (s ? `?${s}` : ""));
}

export function Keys({ search }: { search: string }) {
  const initial = new URLSearchParams(search);
  const [prefix, setPrefix] = useState(initial.get("prefix") ?? "");
  const [draft, setDraft] = useState(prefix);
  const [cursors, setCursors] = useState<(Cursor | undefined)[]>([undefined]);
  const initialKey = initial.get("key");
  const [selected, setSelected] = useState<KeyRef | null>(
    initialKey ? { key: initialKey, encoding: initial.get("enc") === "base64" ? "base64" : "utf8" } : null,
  );
  const [creating, setCreating] = useState(false);
  const [listVersion, setListVersion] = useState(0);
  const cursor = cursors[cursors.length - 1];

  const page = usePoll<ListPage>(
    () =>
      call(
        api.GET("/v1/kv", {
          params: {
            query: {
              prefix: prefix || undefined,
              limit: PAGE_SIZE,
              start_after: cursor && cursor.encoding === "utf8" ? cursor.after : undefined,
              start_after_base64: cursor && cursor.encoding === "base64" ? cursor.after : undefined,
            },
          },
        }),
      ),
    null,
    [prefix, cursor?.after, cursor?.encoding, listVersion],
  );

  useEffect(() => {
    setSearch({ prefix: prefix || undefined, key: selected?.key, enc: selected?.encoding === "base64" ? "base64" : undefined });
  }, [prefix, selected]);

  const applyPrefix = (e: Event) => {
    e.preventDefault();
    setPrefix(draft);
    setCursors([undefined]);
  };

  const next = () => {
    const p = page.data;
    if (p?.next_start_after && p.next_start_after_encoding) {
      setCursors([...cursors, { after: p.next_start_after, encoding: p.next_start_after_encoding }]);
    }
  };
  const prev = () => setCursors(cursors.length > 1 ? cursors.slice(0, -1) : cursors);
  const changed = () => setListVersion((v) => v + 1);

  const open = (k: KeyRef) => {
    setCreating(false);
    setSelected(k);
    requestAnimationFrame(() => document.getElementById("key-detail")?.scrollIntoView({ block: "nearest", behavior: "smooth" }));
  };

  return (
    <div class="page">
      <div class="page-head">
        <h1>Keys</h1>
        <button
          class="primary"
          onClick={() => {
            setSelected(null);
            setCreating(true);
          }}
        >
          New key
        </button>
      </div>
      <div class="keys-layout">
        <section class="key-list">
          <form class="toolbar" onSubmit={applyPrefix} role="search">
            <label class="grow">
              Prefix
              <input type="search" name="prefix" value={draft} placeholder="user/" onInput={(e) => setDraft((e.currentTarget as HTMLInputElement).value)} />
            </label>
            <button type="submit">Browse</button>
          </form>
          {page.error && <ErrorBox error={page.error} what="keys" />}
          {!page.data && !page.error ? (
            <Spinner label="Loading keys…" />
          ) : page.data && page.data.items.length === 0 ? (
            <Empty title={prefix ? `No key starts with “${prefix}”` : "No keys yet"}>{cursors.length > 1 ? "This was the last page." : "Create one with “New key”, or write through the API."}</Empty>
          ) : page.data ? (
            <>
              <div class="table-wrap">
                <table class="keys" data-testid="keys-table">
                  <thead>
                    <tr>
                      <th>Key</th>
                      <th class="num">Version</th>
                      <th class="num">Size</th>
                      <th class="hide-narrow">Type</th>
                      <th class="hide-narrow">Expires</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.data.items.map((it) => (
                      <KeyRow key={`${it.key_encoding}:${it.key}`} it={it} active={sameKey(selected, { key: it.key, encoding: it.key_encoding })} onOpen={open} />
                    ))}
                  </tbody>
                </table>
              </div>
              <div class="pager">
                <button onClick={prev} disabled={cursors.length <= 1 || page.loading}>
                  ← Previous
                </button>
                <span class="muted small">
                  page {cursors.length}
                  {page.loading ? " · loading…" : ""}
                </span>
                <button onClick={next} disabled={!page.data.next_start_after || page.loading}>
                  Next →
                </button>
              </div>
            </>
          ) : null}
        </section>
        <section class="key-detail" id="key-detail">
          {creating ? (
            <CreateKey
              prefix={prefix}
              onDone={(k) => {
                changed();
                setCreating(false);
                setSelected(k);
              }}
              onCancel={() => setCreating(false)}
            />
          ) : selected ? (
            <KeyDetail k={selected} onChanged={changed} onDeleted={() => {
              changed();
            }} />
          ) : (
            <Empty title="No key selected">Pick a key to see its value, version, ETag, TTL and content type, and to change or delete it.</Empty>
          )}
        </section>
      </div>
    </div>
  );
}

function KeyRow({ it, active, onOpen }: { it: ListItem; active: boolean; onOpen: (k: KeyRef) => void }) {
  const now = useNow(5000);
  const ref = { key: it.key, encoding: it.key_encoding };
  return (
    <tr class={active ? "selected" : undefined}>
      <td class="mono key-cell">
        <button class="link" onClick={() => onOpen(ref)} title={keyLabel(ref)}>
          {it.key_encoding === "base64" ? (
            <>
              <span class="badge">bytes</span> {escapeBytes(base64ToBytes(it.key))}
            </>
          ) : (
            it.key
          )}
        </button>
      </td>
      <td class="num">{it.version}</td>
      <td class="num">{f.bytes(it.size)}</td>
      <td class="hide-narrow small type-cell" title={it.content_type}>
        {it.content_type}
      </td>
      <td class="hide-narrow small nowrap">{it.expires_at ? f.ago(it.expires_at, now) : "never"}</td>
    </tr>
  );
}

interface Value {
  bytes: Uint8Array;
  etag: string;
  version: number;
  contentType: string;
  expiresAt: number | null;
}

type Loaded = { state: "loading" } | { state: "missing" } | { state: "error"; error: ApiError } | { state: "ok"; value: Value };

async function fetchValue(k: KeyRef): Promise<Loaded> {
  const key = keyBytes(k.key, k.encoding);
  const r = await api.GET("/v1/kv/{key}", {
    params: { path: { key: "" } },
    pathSerializer: keyPath(key),
    parseAs: "arrayBuffer",
  });
  if (r.response.status === 404) return { state: "missing" };
  if (r.error !== undefined || !r.response.ok) return { state: "error", error: toApiError(r.error, r.response) };
  const h = r.response.headers;
  const expires = h.get("x-tierkv-expires-at");
  return {
    state: "ok",
    value: {
      bytes: new Uint8Array(r.data as ArrayBuffer),
      etag: h.get("etag") ?? "",
      version: Number(h.get("x-tierkv-version") ?? "0"),
      contentType: h.get("content-type") ?? "application/octet-stream",
      expiresAt: expires ? Number(expires) : null,
    },
  };
}

function isTextual(contentType: string, text: string | null): boolean {
  if (text === null) return false;
  if (/^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))/i.test(contentType)) return true;
  // Printable UTF-8 without control characters (but tabs and newlines).
  return !/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text);
}

type View = "text" | "hex" | "base64";

function KeyDetail({ k, onChanged, onDeleted }: { k: KeyRef; onChanged: () => void; onDeleted: () => void }) {
  const now = useNow();
  const [loaded, setLoaded] = useState<Loaded>({ state: "loading" });
  const [reload, setReload] = useState(0);
  const [view, setView] = useState<View>("text");
  const [message, setMessage] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setLoaded({ state: "loading" });
    fetchValue(k)
      .then((l) => live && setLoaded(l))
      .catch((e: unknown) => live && setLoaded({ state: "error", error: toApiError(e) }));
    return () => {
      live = false;
    };
  }, [k.key, k.encoding, reload]);

  const header = (
    <div class="detail-head">
      <h2 class="mono break">{k.encoding === "base64" ? escapeBytes(base64ToBytes(k.key)) : k.key}</h2>
      {k.encoding === "base64" && (
        <p class="muted small">
          binary key (not UTF-8) · base64 <code>{k.key}</code> · hex <code>{hexOf(base64ToBytes(k.key))}</code>
        </p>
      )}
    </div>
  );

  if (loaded.state === "loading") {
    return (
      <div class="card">
        {header}
        <Spinner label="Loading the value…" />
      </div>
    );
  }
  if (loaded.state === "error") {
    return (
      <div class="card">
        {header}
        <ErrorBox error={loaded.error} what="the value" />
      </div>
    );
  }
  if (loaded.state === "missing") {
    return (
      <div class="card">
        {header}
        {message && <p class="toast">{message}</p>}
        <Empty title="This key has no live value">It was deleted, it expired, or it never existed.</Empty>
      </div>
    );
  }
  const v = loaded.value;
  const text = bytesToText(v.bytes);
  const textual = isTextual(v.contentType, text);
  const shown: View = view === "text" && !textual ? "hex" : view;
  return (
    <div class="card" data-testid="key-detail">
      {header}
      {message && <p class="toast">{message}</p>}
      <dl class="facts">
        <dt>Version</dt>
        <dd data-testid="version">{v.version}</dd>
        <dt>ETag</dt>
        <dd class="mono">{v.etag}</dd>
        <dt>Content type</dt>
        <dd class="mono">{v.contentType}</dd>
        <dt>Size</dt>
        <dd>{f.bytes(v.bytes.length)}</dd>
        <dt>Expires</dt>
        <dd>{v.expiresAt ? `${f.dateTime(v.expiresAt)} (${f.ago(v.expiresAt, now)})` : "never"}</dd>
      </dl>
      <div class="tabs" role="tablist">
        {(["text", "hex", "base64"] as View[]).map((t) => (
          <button key={t} role="tab" aria-selected={shown === t} class={shown === t ? "active" : undefined} disabled={t === "text" && !textual} onClick={() => setView(t)}>
            {t}
          </button>
        ))}
      </div>
      <pre class="value" data-testid="value">
        {shown === "text" ? text : shown === "hex" ? hexDump(v.bytes) : bytesToBase64(v.bytes)}
      </pre>
      <EditValue
        k={k}
        value={v}
        textual={textual}
        onSaved={(msg) => {
          setMessage(msg);
          setReload((r) => r + 1);
          onChanged();
        }}
        onDeleted={(msg) => {
          setMessage(msg);
          setReload((r) => r + 1);
          onDeleted();
        }}
      />
    </div>
  );
}

function hexDump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.slice(i, i + 16);
    const ascii = Array.from(row, (x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : ".")).join("");
    lines.push(`${i.toString(16).padStart(6, "0")}  ${hexOf(row).padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n") || "(empty)";
}

async function putValue(k: Uint8Array, body: Uint8Array, contentType: string, ttl: number | undefined, cond: { ifMatch?: string; ifNoneMatch?: boolean }): Promise<number> {
  const headers: Record<string, string> = { "Content-Type": contentType };
  if (cond.ifMatch) headers["If-Match"] = cond.ifMatch;
  if (cond.ifNoneMatch) headers["If-None-Match"] = "*";
  const r = await call(
    api.PUT("/v1/kv/{key}", {
      params: { path: { key: "" }, query: ttl ? { expiry: { ttl } } : {} },
      pathSerializer: keyPath(k),
      body: body as unknown as string,
      bodySerializer: (b: unknown) => b as BodyInit,
      headers,
    }),
  );
  return (r as { version: number }).version;
}

function parseValue(input: string, encoding: "text" | "base64"): Uint8Array {
  if (encoding === "text") return textToBytes(input);
  const clean = input.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new ApiError(0, "invalid_input", "Invalid base64", "the value is not valid base64");
  return base64ToBytes(clean);
}

function parseTtl(s: string): number | undefined {
  const t = s.trim();
  if (!t) return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 1) throw new ApiError(0, "invalid_input", "Invalid TTL", "the TTL is a whole number of seconds, at least 1");
  return n;
}

function EditValue({ k, value, textual, onSaved, onDeleted }: { k: KeyRef; value: Value; textual: boolean; onSaved: (m: string) => void; onDeleted: (m: string) => void }) {
  const [encoding, setEncoding] = useState<"text" | "base64">(textual ? "text" : "base64");
  const [input, setInput] = useState(textual ? (bytesToText(value.bytes) ?? "") : bytesToBase64(value.bytes));
  const [contentType, setContentType] = useState(value.contentType);
  const [ttl, setTtl] = useState("");
  const [guard, setGuard] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>(undefined);

  useEffect(() => {
    setEncoding(textual ? "text" : "base64");
    setInput(textual ? (bytesToText(value.bytes) ?? "") : bytesToBase64(value.bytes));
    setContentType(value.contentType);
    setError(undefined);
  }, [value.version, value.etag]);

  const key = keyBytes(k.key, k.encoding);
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const version = await putValue(key, parseValue(input, encoding), contentType || "application/octet-stream", parseTtl(ttl), guard ? { ifMatch: value.etag } : {});
      setTtl("");
      onSaved(`Saved: version ${version}.`);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete ${keyLabel(k)}${guard ? ` (only if still at version ${value.version})` : ""}?`)) return;
    setBusy(true);
    setError(undefined);
    try {
      await call(
        api.DELETE("/v1/kv/{key}", {
          params: { path: { key: "" } },
          pathSerializer: keyPath(key),
          headers: guard ? { "If-Match": value.etag } : {},
        }),
      );
      onDeleted("Deleted.");
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="edit" onSubmit={save}>
      <h3>Change</h3>
      <label>
        Value
        <textarea name="value" rows={5} value={input} onInput={(e) => setInput((e.currentTarget as HTMLTextAreaElement).value)} />
      </label>
      <div class="row">
        <label>
          Written as
          <select value={encoding} onChange={(e) => setEncoding((e.currentTarget as HTMLSelectElement).value as "text" | "base64")}>
            <option value="text">text (UTF-8)</option>
            <option value="base64">base64 (any bytes)</option>
          </select>
        </label>
        <label class="grow">
          Content type
          <input name="content-type" value={contentType} onInput={(e) => setContentType((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          TTL (s)
          <input name="ttl" inputMode="numeric" placeholder="never" value={ttl} onInput={(e) => setTtl((e.currentTarget as HTMLInputElement).value)} size={8} />
        </label>
      </div>
      <label class="check">
        <input type="checkbox" checked={guard} onChange={(e) => setGuard((e.currentTarget as HTMLInputElement).checked)} />
        Only if unchanged since loaded (<code>If-Match: {value.etag}</code>)
      </label>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Saving…" : "Save"}
        </button>
        <button type="button" class="danger" disabled={busy} onClick={remove}>
          Delete
        </button>
      </div>
      {error && <ErrorBox error={error} />}
    </form>
  );
}

function CreateKey({ prefix, onDone, onCancel }: { prefix: string; onDone: (k: KeyRef) => void; onCancel: () => void }) {
  const [key, setKey] = useState(prefix);
  const [keyIsBase64, setKeyIsBase64] = useState(false);
  const [input, setInput] = useState("");
  const [encoding, setEncoding] = useState<"text" | "base64">("text");
  const [contentType, setContentType] = useState("text/plain");
  const [ttl, setTtl] = useState("");
  const [onlyNew, setOnlyNew] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>(undefined);

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const ref: KeyRef = { key: keyIsBase64 ? key.replace(/\s+/g, "") : key, encoding: keyIsBase64 ? "base64" : "utf8" };
      const bytes = keyIsBase64 ? parseValue(ref.key, "base64") : textToBytes(key);
      if (bytes.length === 0) throw new ApiError(0, "invalid_input", "Key is empty", "the key needs at least one byte");
      await putValue(bytes, parseValue(input, encoding), contentType || "application/octet-stream", parseTtl(ttl), { ifNoneMatch: onlyNew });
      onDone(ref);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card edit" onSubmit={create} data-testid="create-key">
      <h2>New key</h2>
      <div class="row">
        <label class="grow">
          Key
          <input name="key" value={key} onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)} required autofocus />
        </label>
        <label class="check">
          <input type="checkbox" checked={keyIsBase64} onChange={(e) => setKeyIsBase64((e.currentTarget as HTMLInputElement).checked)} />
          key in base64
        </label>
      </div>
      <label>
        Value
        <textarea name="value" rows={5} value={input} onInput={(e) => setInput((e.currentTarget as HTMLTextAreaElement).value)} />
      </label>
      <div class="row">
        <label>
          Written as
          <select value={encoding} onChange={(e) => setEncoding((e.currentTarget as HTMLSelectElement).value as "text" | "base64")}>
            <option value="text">text (UTF-8)</option>
            <option value="base64">base64 (any bytes)</option>
          </select>
        </label>
        <label class="grow">
          Content type
          <input name="content-type" value={contentType} onInput={(e) => setContentType((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          TTL (s)
          <input name="ttl" inputMode="numeric" placeholder="never" value={ttl} onInput={(e) => setTtl((e.currentTarget as HTMLInputElement).value)} size={8} />
        </label>
      </div>
      <label class="check">
        <input type="checkbox" checked={onlyNew} onChange={(e) => setOnlyNew((e.currentTarget as HTMLInputElement).checked)} />
        Only if the key does not exist (<code>If-None-Match: *</code>)
      </label>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create"}
        </button>
        <button type="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
      {error && <ErrorBox error={error} />}
    </form>
  );
}
