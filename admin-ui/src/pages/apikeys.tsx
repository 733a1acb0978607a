// API keys (design note 0012): every key with its role, prefixes, creation and last use
// (never a secret), a form that creates one (its key is shown once, here), and revocation
// after a confirmation.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, call, toApiError, type ApiKey, type CreateKey, type CreatedKey, type Role } from "../api/client";
import { Empty, ErrorBox, Freshness, Pending } from "../components/states";
import * as f from "../format";
import { useNow, usePoll } from "../hooks";

const ROLES: { role: Role; label: string; badge: string }[] = [
  { role: "read", label: "read: get, head and list", badge: "info" },
  { role: "write", label: "write: read, plus put, delete and batch", badge: "warn" },
  { role: "admin", label: "admin: everything, this page included", badge: "bad" },
];

// The server's limits (note 0012), checked here first for a message next to the field.
const MAX_NAME = 128;
const MAX_PREFIXES = 16;
const MAX_PREFIX = 256;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

type Notice = { kind: "ok"; text: string } | { kind: "error"; error: ApiError };

export function ApiKeys() {
  const now = useNow();
  const keys = usePoll(() => call(api.GET("/admin/v1/keys")), 15_000);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);

  // Newest first: a key just made is at the top.
  const list = [...(keys.data?.keys ?? [])].sort((a, b) => b.created_at_ms - a.created_at_ms || a.id.localeCompare(b.id));

  const focusRevoke = (id: string) => requestAnimationFrame(() => document.querySelector<HTMLButtonElement>(`button[data-revoke="${id}"]`)?.focus());
  const revoked = (k: ApiKey, error: ApiError | null) => {
    setConfirming(null);
    setNotice(error ? { kind: "error", error } : { kind: "ok", text: `Revoked “${k.name}” (${k.id}): every gateway refuses it within about a second.` });
    keys.refresh();
  };

  return (
    <div class="page">
      <div class="page-head">
        <h1>API keys</h1>
        <Freshness loading={keys.loading} error={keys.error} at={keys.at} now={now} />
      </div>
      <p class="muted small">
        Clients of the API send a key as <code>Authorization: Bearer &lt;key&gt;</code>. A <b>read</b> key gets and lists, a <b>write</b> key also puts and deletes, an <b>admin</b> key
        may do everything, this page included. Prefixes limit a read or write key to the keys that start with one of them. TierKV keeps only a hash of each key, so a key is
        shown once, when it is created.
      </p>
      {created ? (
        <NewKey
          k={created}
          onDone={() => {
            setCreated(null);
            requestAnimationFrame(() => document.getElementById("apikey-name")?.focus());
          }}
        />
      ) : (
        <CreateForm
          onCreated={(k) => {
            setNotice(null);
            setCreated(k);
            keys.refresh();
          }}
        />
      )}
      <section>
        <h2>Keys</h2>
        {notice?.kind === "ok" && (
          <p class="toast" role="status">
            {notice.text}
          </p>
        )}
        {notice?.kind === "error" && <ErrorBox error={notice.error} />}
        {!keys.data ? (
          <Pending error={keys.error} what="API keys" />
        ) : list.length === 0 ? (
          <Empty title="No API keys yet">
            Create one above for each client or service. Until then only the cluster secret and dashboard sessions reach the API. On a node host,{" "}
            <code>tierkv admin keys create</code> does the same.
          </Empty>
        ) : (
          <div class="table-wrap">
            <table class="api-keys" data-testid="api-keys-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th class="hide-narrow">ID</th>
                  <th class="hide-narrow">Role</th>
                  <th class="hide-narrow">Prefixes</th>
                  <th class="hide-narrow">Created</th>
                  <th>Last used</th>
                  <th>
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((k) => (
                  <KeyRow
                    key={k.id}
                    k={k}
                    now={now}
                    fresh={k.id === created?.id}
                    confirming={confirming === k.id}
                    onRevoke={() => {
                      setNotice(null);
                      setConfirming(k.id);
                    }}
                    onCancel={() => {
                      setConfirming(null);
                      focusRevoke(k.id);
                    }}
                    onRevoked={(error) => revoked(k, error)}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

function roleBadge(role: Role) {
  return <span class={`badge ${ROLES.find((r) => r.role === role)?.badge ?? ""}`}>{role}</span>;
}

function Prefixes({ prefixes }: { prefixes: string[] }) {
  if (prefixes.length === 0) return <span class="muted small">every key</span>;
  return (
    <span class="prefixes">
      {prefixes.map((p) => (
        <span class="chip" key={p}>
          {p}
        </span>
      ))}
    </span>
  );
}

/** A time from the server, never "in 2 s" when the two clocks disagree a little. */
function past(t: number | null | undefined, now: number): string {
  return t === null || t === undefined ? "never" : f.ago(Math.min(t, now), now);
}

function KeyRow({
  k,
  now,
  fresh,
  confirming,
  onRevoke,
  onCancel,
  onRevoked,
}: {
  k: ApiKey;
  now: number;
  fresh: boolean;
  confirming: boolean;
  onRevoke: () => void;
  onCancel: () => void;
  onRevoked: (error: ApiError | null) => void;
}) {
  return (
    <>
      <tr class={fresh || confirming ? "selected" : undefined} data-key-id={k.id}>
        <td class="name-cell">
          <strong>{k.name}</strong>
          {/* Narrow screens: the id, role and prefixes under the name. */}
          <div class="muted small mono only-narrow">{k.id}</div>
          <div class="only-narrow narrow-facts">
            {roleBadge(k.role)} <Prefixes prefixes={k.prefixes} />
          </div>
        </td>
        <td class="mono hide-narrow">{k.id}</td>
        <td class="hide-narrow">{roleBadge(k.role)}</td>
        <td class="hide-narrow">
          <Prefixes prefixes={k.prefixes} />
        </td>
        <td class="nowrap hide-narrow" title={f.dateTime(k.created_at_ms)}>
          {past(k.created_at_ms, now)}
        </td>
        <td class="nowrap" title={k.last_used_at_ms ? f.dateTime(k.last_used_at_ms) : "not used since it was created"}>
          {past(k.last_used_at_ms, now)}
        </td>
        <td class="num">
          <button class="danger compact" data-revoke={k.id} onClick={onRevoke} disabled={confirming} aria-label={`Revoke ${k.name} (${k.id})`}>
            Revoke
          </button>
        </td>
      </tr>
      {confirming && (
        <tr class="confirm-row">
          <td colSpan={7}>
            <ConfirmRevoke k={k} onCancel={onCancel} onRevoked={onRevoked} />
          </td>
        </tr>
      )}
    </>
  );
}

function ConfirmRevoke({ k, onCancel, onRevoked }: { k: ApiKey; onCancel: () => void; onRevoked: (error: ApiError | null) => void }) {
  const [busy, setBusy] = useState(false);
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => cancel.current?.focus(), []);

  const revoke = async () => {
    setBusy(true);
    try {
      await call(api.DELETE("/admin/v1/keys/{id}", { params: { path: { id: k.id } } }));
      onRevoked(null);
    } catch (e) {
      onRevoked(toApiError(e));
    }
  };

  return (
    <div
      class="confirm"
      role="group"
      aria-labelledby={`revoke-${k.id}`}
      onKeyDown={(e) => {
        if (e.key === "Escape" && !busy) onCancel();
      }}
      data-testid="confirm-revoke"
    >
      <p id={`revoke-${k.id}`}>
        <strong>
          Revoke “{k.name}” ({k.id})?
        </strong>{" "}
        Every gateway refuses it within about a second: clients that send it get <code>401</code>. This cannot be undone; a client that still needs access needs a new key.
      </p>
      <div class="actions">
        <button class="danger solid" onClick={revoke} disabled={busy}>
          {busy ? "Revoking…" : "Revoke key"}
        </button>
        <button ref={cancel} onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
    </div>
  );
}

interface Draft {
  name: string;
  role: Role;
  prefixes: string;
}

type FieldErrors = Partial<Record<"name" | "prefixes", string>>;

const chars = (s: string) => [...s].length;

/** The request for a draft, or what is wrong with it, field by field. */
function validate(d: Draft): { errors: FieldErrors; body?: CreateKey } {
  const errors: FieldErrors = {};
  const name = d.name.trim();
  if (chars(name) === 0) errors.name = "Give the key a name: who or what uses it.";
  else if (chars(name) > MAX_NAME) errors.name = `At most ${MAX_NAME} characters (this is ${chars(name)}).`;
  else if (CONTROL.test(name)) errors.name = "No control characters (tabs, line breaks).";
  const prefixes = [
    ...new Set(
      d.prefixes
        .split(",")
        .map((p) => p.trim())
        .filter((p) => p.length > 0),
    ),
  ];
  const long = prefixes.find((p) => chars(p) > MAX_PREFIX);
  if (d.role === "admin" && prefixes.length > 0) errors.prefixes = "An admin key reaches every key: remove the prefixes, or choose read or write.";
  else if (prefixes.length > MAX_PREFIXES) errors.prefixes = `At most ${MAX_PREFIXES} prefixes (these are ${prefixes.length}).`;
  else if (long !== undefined) errors.prefixes = `Each prefix has at most ${MAX_PREFIX} characters (“${long.slice(0, 20)}…” has ${chars(long)}).`;
  if (errors.name || errors.prefixes) return { errors };
  return { errors, body: { name, role: d.role, prefixes } };
}

function CreateForm({ onCreated }: { onCreated: (k: CreatedKey) => void }) {
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("read");
  const [prefixes, setPrefixes] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const v = validate({ name, role, prefixes });
    setErrors(v.errors);
    setFailure(undefined);
    if (!v.body) {
      document.getElementById(v.errors.name ? "apikey-name" : "apikey-prefixes")?.focus();
      return;
    }
    setBusy(true);
    try {
      const k = await call(api.POST("/admin/v1/keys", { body: v.body }));
      setBusy(false);
      onCreated(k);
    } catch (err) {
      setFailure(toApiError(err));
      setBusy(false);
    }
  };

  return (
    <form class="card edit apikey-form" onSubmit={submit} noValidate aria-labelledby="apikey-form-title" data-testid="create-api-key">
      <h2 id="apikey-form-title">Create a key</h2>
      <div class="row">
        <div class="field grow">
          <label for="apikey-name">Name</label>
          <input
            id="apikey-name"
            name="name"
            value={name}
            placeholder="billing service"
            autocomplete="off"
            aria-invalid={errors.name ? true : undefined}
            aria-describedby={errors.name ? "apikey-name-error" : undefined}
            onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)}
          />
          {errors.name && (
            <span class="field-error" id="apikey-name-error">
              {errors.name}
            </span>
          )}
        </div>
        <div class="field">
          <label for="apikey-role">Role</label>
          <select id="apikey-role" name="role" value={role} onChange={(e) => setRole((e.currentTarget as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r.role} value={r.role}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
        <div class="field grow">
          <label for="apikey-prefixes">Prefixes</label>
          <input
            id="apikey-prefixes"
            name="prefixes"
            value={prefixes}
            placeholder={role === "admin" ? "none: admin keys reach every key" : "every key; or e.g. orders/, carts/"}
            autocomplete="off"
            spellcheck={false}
            aria-invalid={errors.prefixes ? true : undefined}
            aria-describedby={errors.prefixes ? "apikey-prefixes-error apikey-prefixes-hint" : "apikey-prefixes-hint"}
            onInput={(e) => setPrefixes((e.currentTarget as HTMLInputElement).value)}
          />
          {errors.prefixes && (
            <span class="field-error" id="apikey-prefixes-error">
              {errors.prefixes}
            </span>
          )}
          <span class="hint" id="apikey-prefixes-hint">
            Separated by commas; empty: every key.
          </span>
        </div>
      </div>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create key"}
        </button>
      </div>
      {failure && <ErrorBox error={failure} />}
    </form>
  );
}

function NewKey({ k, onDone }: { k: CreatedKey; onDone: () => void }) {
  const input = useRef<HTMLTextAreaElement>(null);
  const [copied, setCopied] = useState("");
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);

  const copy = async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(k.key);
      ok = true;
    } catch {
      // No clipboard API (a page served over plain HTTP from another host): select it.
      input.current?.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
    }
    setCopied(ok ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C on a Mac) to copy it.");
  };

  return (
    <section class="card new-key" aria-labelledby="new-key-title" data-testid="new-key">
      <h2 id="new-key-title">Key “{k.name}” created</h2>
      <p class="notice">
        <strong>Copy it now: it is shown only once.</strong> TierKV keeps only a hash of it; if it is lost, revoke it and create another.
      </p>
      <div class="secret-row">
        <textarea
          ref={input}
          class="secret"
          readOnly
          rows={1}
          value={k.key}
          aria-label="The new key"
          spellcheck={false}
          onFocus={(e) => (e.currentTarget as HTMLTextAreaElement).select()}
          data-testid="new-key-value"
        />
        <button type="button" class="primary" onClick={copy}>
          Copy
        </button>
        <span class="small muted copied" role="status">
          {copied}
        </span>
      </div>
      <p class="small">
        {roleBadge(k.role)} <Prefixes prefixes={k.prefixes} /> · id <code>{k.id}</code> · send it as <code>Authorization: Bearer tkv_…</code>
      </p>
      <div class="actions">
        <button type="button" onClick={onDone}>
          Done: I have stored it
        </button>
      </div>
    </section>
  );
}
