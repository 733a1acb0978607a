// The TierKV API client for TypeScript: `schema.ts` is generated from ../../openapi.yaml by
// openapi-typescript (`npm run gen`; scripts/check-clients fails when it is out of date),
// calls go through openapi-fetch, typed by it.
import createClient, { type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths };
export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

/**
 * A client of the API at `baseUrl` (e.g. `http://127.0.0.1:8080`). Object query parameters
 * are exploded into plain ones, as the contract says (`style: form, explode: true`:
 * `expiry: { ttl: 60 }` is sent as `?ttl=60`). `apiKey` (an API key, `tkv_...`: the
 * contract's `api_key` scheme) is sent as `Authorization: Bearer <apiKey>` with every
 * request.
 */
export function tierkvClient(
  baseUrl: string,
  { apiKey, ...options }: Omit<ClientOptions, "baseUrl"> & { apiKey?: string } = {},
) {
  const headers = apiKey
    ? { ...(options.headers as Record<string, string> | undefined), Authorization: `Bearer ${apiKey}` }
    : options.headers;
  return createClient<paths>({
    querySerializer: { object: { style: "form", explode: true } },
    ...options,
    headers,
    baseUrl,
  });
}
