// The API's types, generated from ../openapi.yaml once, for every TypeScript user: the
// published client's `clients/typescript/src/schema.ts` (scripts/check-clients regenerates
// it and fails when it is out of date). Type-only: nothing of it reaches the bundle.
export type * from "../../../clients/typescript/src/schema";
