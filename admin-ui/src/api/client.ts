// The typed API client: the types come from the published TypeScript client's schema
// (`schema.ts` re-exports clients/typescript/src/schema.ts, which scripts/check-clients keeps
// in step with ../openapi.yaml), calls go through
// openapi-fetch. Errors are the API's problem+json documents, thrown as `ApiError`.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type ClusterOverview = Schemas["ClusterOverview"];
export type NodeInfo = Schemas["NodeInfo"];
export type ShardInfo = Schemas["ShardInfo"];
export type ReplicaInfo = Schemas["ReplicaInfo"];
export type EventItem = Schemas["Event"];
export type EventList = Schemas["EventList"];
export type Traffic = Schemas["Traffic"];
export type HotKeys = Schemas["HotKeys"];
export type ListPage = Schemas["ListPage"];
export type ListItem = Schemas["ListItem"];
export type Encoding = Schemas["Encoding"];
export type ApiKey = Schemas["KeyInfo"];
export type CreatedKey = Schemas["CreatedKey"];
export type CreateKey = Schemas["CreateKey"];
export type Role = Schemas["Role"];

// Object query parameters are exploded into plain ones, as the contract says
// (`style: form, explode: true`: `expiry: { ttl: 60 }` is sent as `?ttl=60`).
export const api = createClient<paths>({
  baseUrl: "",
  credentials: "same-origin",
  querySerializer: { object: { style: "form", explode: true } },
});

/** A failed call: the API's problem document, or what went wrong on the way. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;

  constructor(status: number, code: string, title: string, detail: string) {
    super(detail || title);
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
  }
}

function isProblem(e: unknown): e is Problem {
  return typeof e === "object" && e !== null && "code" in e && "status" in e;
}

/** Listeners told when the API answers 401 (the session ended). */
const unauthorized = new Set<() => void>();
export function onUnauthorized(f: () => void): () => void {
  unauthorized.add(f);
  return () => unauthorized.delete(f);
}

export function toApiError(error: unknown, response?: Response): ApiError {
  if (error instanceof ApiError) return error;
  if (isProblem(error)) {
    return new ApiError(error.status, error.code, error.title, error.detail);
  }
  if (response) {
    return new ApiError(response.status, "http", response.statusText, `HTTP ${response.status}`);
  }
  const msg = error instanceof Error ? error.message : String(error);
  return new ApiError(0, "network", "Network error", `the gateway did not answer: ${msg}`);
}

/** The data of an openapi-fetch call, or a thrown `ApiError` (401s also notify listeners). */
export async function call<T>(
  p: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let r: { data?: T; error?: unknown; response: Response };
  try {
    r = await p;
  } catch (e) {
    throw toApiError(e);
  }
  if (r.error !== undefined || !r.response.ok) {
    const err = toApiError(r.error, r.response);
    if (err.status === 401) unauthorized.forEach((f) => f());
    throw err;
  }
  return r.data as T;
}

// ---- keys: any bytes, percent-encoded byte by byte in the path ----

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function textToBytes(s: string): Uint8Array {
  return enc.encode(s);
}

/** The bytes as UTF-8 text, or null when they are not valid UTF-8. */
export function bytesToText(b: Uint8Array): string | null {
  try {
    return dec.decode(b);
  } catch {
    return null;
  }
}

/** The key's bytes from a JSON key field and its encoding. */
export function keyBytes(key: string, encoding: Encoding): Uint8Array {
  return encoding === "base64" ? base64ToBytes(key) : textToBytes(key);
}

/** Percent-encodes every byte but the unreserved ASCII characters. */
export function encodeKeyPath(b: Uint8Array): string {
  let s = "";
  for (const x of b) {
    const c = String.fromCharCode(x);
    s += /[A-Za-z0-9\-._~]/.test(c) ? c : "%" + x.toString(16).toUpperCase().padStart(2, "0");
  }
  return s;
}

/** openapi-fetch path serializer for `/v1/kv/{key}` with a byte key. */
export function keyPath(b: Uint8Array) {
  return (pathname: string) => pathname.replace("{key}", encodeKeyPath(b));
}

export function hexOf(b: Uint8Array, max = Infinity): string {
  const parts: string[] = [];
  for (let i = 0; i < Math.min(b.length, max); i++) parts.push(b[i]!.toString(16).padStart(2, "0"));
  return parts.join(" ");
}

/** Bytes as readable text: printable ASCII as is, anything else as `\xNN` (and `\` as `\\`). */
export function escapeBytes(b: Uint8Array): string {
  let s = "";
  for (const x of b) {
    if (x === 0x5c) s += "\\\\";
    else if (x >= 0x20 && x < 0x7f) s += String.fromCharCode(x);
    else s += "\\x" + x.toString(16).padStart(2, "0");
  }
  return s;
}
