// Real TierKV processes for the browser tests: `tierkv dev`, or a cluster of three
// `tierkv node` processes and a `tierkv gateway` (so that a leader can be killed with
// SIGKILL), each on 127.0.0.1, killed when the test ends. The harness may read a node's
// /status; the browser only ever talks to the gateway.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "@playwright/test";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const BIN = process.env.TIERKV_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(REPO, "target"), "debug", "tierkv");
export const SCREENSHOTS = process.env.TIERKV_UI_SCREENSHOTS ?? join(REPO, "target", "ui-screenshots");

/** A port of 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => ok(port));
    });
  });
}

/** Polls `f` until it returns a value other than undefined, or fails after `ms`. */
export async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Proc {
  child: ChildProcess;
  /** Everything it printed on stdout. */
  out: () => string;
}

function start(args: string[], env: Record<string, string>): Proc {
  const child = spawn(BIN, args, {
    env: { ...process.env, RUST_LOG: process.env.TIERKV_TEST_LOG ?? "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => {
    if (process.env.TIERKV_TEST_LOG) process.stderr.write(d);
  });
  return { child, out: () => out };
}

/** The URL a process printed after "listening on ". */
async function listening(p: Proc): Promise<string> {
  return until("a process to listen", 60_000, async () => {
    if (p.child.exitCode !== null) throw new Error(`exited with ${p.child.exitCode}:\n${p.out()}`);
    const m = /listening on (http:\/\/\S+)/.exec(p.out());
    return m?.[1];
  });
}

async function ready(url: string, ms: number) {
  await until(`${url}/health/ready`, ms, async () => ((await fetch(`${url}/health/ready`)).ok ? true : undefined));
}

const TIMINGS = {
  TIERKV_CLUSTER__LEASE_DURATION: "1000ms",
  TIERKV_CLUSTER__HEARTBEAT_INTERVAL: "100ms",
  TIERKV_CLUSTER__MAX_CLOCK_DRIFT: "100ms",
  TIERKV_CLUSTER__HANDOVER_AFTER: "2000ms",
  TIERKV_GATEWAY__CLUSTER__LEADER_WAIT: "10s",
  TIERKV_CACHE__DISK_BYTES: "0",
};

/** `tierkv dev` on a free port with its own data directory. */
export class Dev {
  private constructor(
    readonly proc: Proc,
    readonly url: string,
    private readonly dir: string,
  ) {}

  static async start(shards = 8): Promise<Dev> {
    const dir = mkdtempSync(join(tmpdir(), "tierkv-ui-dev-"));
    const proc = start(["dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--shards", String(shards)], TIMINGS);
    const url = await listening(proc);
    await ready(url, 60_000);
    return new Dev(proc, url, dir);
  }

  /** The dashboard link `tierkv dev` printed. */
  async dashboardLink(): Promise<string> {
    return until("the dashboard link", 10_000, async () => /dashboard:\s+(http:\/\/\S+#login=[0-9a-f]+)/.exec(this.proc.out())?.[1]);
  }

  stop() {
    this.proc.child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ShardStatus {
  shard: number;
  role: string;
  leader: number | null;
}

/** Three `tierkv node` processes and a `tierkv gateway`. */
export class Cluster {
  readonly nodes = new Map<number, Proc>();
  gateway!: Proc;
  url = "";
  readonly secret = `ui-test-${Math.random().toString(36).slice(2)}`;
  private constructor(
    readonly dir: string,
    readonly ports: Map<number, number>,
    readonly shards: number,
  ) {}

  static async start(shards: number): Promise<Cluster> {
    const dir = mkdtempSync(join(tmpdir(), "tierkv-ui-cluster-"));
    const ports = new Map<number, number>();
    for (const id of [1, 2, 3]) ports.set(id, await freePort());
    const c = new Cluster(dir, ports, shards);
    const members = [...ports].map(([id, port]) => `${id}=127.0.0.1:${port}`).join(",");
    for (const [id, port] of ports) {
      const node = start(
        ["node", "--node-id", String(id), "--listen", `127.0.0.1:${port}`, "--data-dir", join(dir, `node-${id}`), "--store-url", c.store(), "--shards", String(shards), "--initial-members", members],
        c.env(),
      );
      c.nodes.set(id, node);
    }
    for (const n of c.nodes.values()) await listening(n);
    c.gateway = start(["gateway", "--listen", "127.0.0.1:0", "--store-url", c.store()], c.env());
    c.url = await listening(c.gateway);
    await ready(c.url, 90_000);
    // Every shard has a serving leader (readiness only needs the members to answer).
    await until("a leader for every shard", 60_000, async () => {
      const o = await c.admin<{ health: { shards_without_leader: number } }>("/admin/v1/cluster");
      return o.health.shards_without_leader === 0 ? true : undefined;
    });
    return c;
  }

  private store(): string {
    mkdirSync(join(this.dir, "objects"), { recursive: true });
    return `file://${join(this.dir, "objects")}`;
  }

  private env(): Record<string, string> {
    return { ...TIMINGS, TIERKV_CLUSTER__SECRET: this.secret };
  }

  /** Admin API call with the secret as a bearer token (the harness's view). */
  async admin<T>(path: string): Promise<T> {
    const r = await fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${this.secret}` } });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }

  /** The node leading the most shards (from the admin API), and those shards. */
  async busiestLeader(): Promise<{ node: number; shards: number[] }> {
    const { shards } = await this.admin<{ shards: { shard: number; leader: number | null }[] }>("/admin/v1/shards");
    const by = new Map<number, number[]>();
    for (const s of shards) if (s.leader !== null) by.set(s.leader, [...(by.get(s.leader) ?? []), s.shard]);
    const [node, led] = [...by].sort((a, b) => b[1].length - a[1].length)[0] ?? [0, []];
    return { node, shards: led };
  }

  kill(id: number) {
    this.nodes.get(id)?.child.kill("SIGKILL");
  }

  stop() {
    for (const n of this.nodes.values()) n.child.kill("SIGKILL");
    this.gateway?.child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Saves a full-page screenshot as target/ui-screenshots/<name>.png. */
export async function shot(page: Page, name: string) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Transitions (a bar's width animates) are finished at once for the picture.
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true, animations: "disabled" });
}

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 900 };
