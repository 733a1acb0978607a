import { api, call, type ClusterOverview, type NodeInfo, type Traffic } from "../api/client";
import { Chart } from "../components/chart";
import { ErrorBox, Freshness, Pending } from "../components/states";
import * as f from "../format";
import { useNarrow, useNow, usePoll } from "../hooks";

const HEALTH_LABEL: Record<string, string> = {
  healthy: "Healthy",
  degraded: "Degraded",
  unavailable: "Unavailable",
};

export function Overview() {
  const now = useNow();
  const cluster = usePoll(() => call(api.GET("/admin/v1/cluster")), 2000);
  const nodes = usePoll(() => call(api.GET("/admin/v1/nodes")), 2000);
  const traffic = usePoll(() => call(api.GET("/admin/v1/traffic")), 2000);
  const c = cluster.data;

  return (
    <div class="page">
      <div class="page-head">
        <h1>Overview</h1>
        <Freshness loading={cluster.loading} error={cluster.error} at={cluster.at} now={now} />
      </div>
      {c ? <Summary c={c} /> : <Pending error={cluster.error} what="the cluster overview" />}

      <section>
        <h2>This gateway's traffic</h2>
        {traffic.data ? <TrafficCharts t={traffic.data} /> : <Pending error={traffic.error} what="traffic" />}
      </section>

      <div class="two-col">
        <section>
          <h2>Members</h2>
          {c ? <Members c={c} now={now} /> : <Pending error={cluster.error} what="members" />}
        </section>
        <section>
          <h2>Leaders per node</h2>
          {c ? <LeaderBars c={c} /> : <Pending error={cluster.error} what="leaders" />}
        </section>
      </div>

      <section>
        <h2>Nodes</h2>
        {nodes.data ? <Nodes nodes={nodes.data.nodes} /> : <Pending error={nodes.error} what="node figures" />}
        {nodes.error && nodes.data && <ErrorBox error={nodes.error} what="fresh node figures" />}
      </section>
    </div>
  );
}

function Summary({ c }: { c: ClusterOverview }) {
  const h = c.health;
  return (
    <div class="summary">
      <div class={`card health ${h.status}`} data-testid="health">
        <span class="label">Health</span>
        <span class="big">{HEALTH_LABEL[h.status] ?? h.status}</span>
        {h.reasons.length > 0 ? (
          <ul class="reasons">
            {h.reasons.map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
        ) : (
          <span class="sub">every member answers, every shard has a leader</span>
        )}
      </div>
      <Stat label="Members up" value={`${h.members_up} / ${h.members}`} sub={h.members_up < h.members ? "some do not answer" : "all answering"} testid="members-up" />
      <Stat label="Shards" value={f.num(c.map.shards)} sub={`${c.map.replication} replicas each · map v${c.map.version}`} />
      <Stat
        label="Leaders"
        value={`${c.roles.leader} / ${c.map.shards}`}
        sub={[
          h.shards_without_leader ? `${h.shards_without_leader} without leader` : "",
          c.roles.recovering ? `${c.roles.recovering} recovering` : "",
          c.roles.candidate ? `${c.roles.candidate} electing` : "",
          c.roles.unknown ? `${c.roles.unknown} replicas on silent nodes` : "",
        ]
          .filter(Boolean)
          .join(" · ") || "every shard led"}
        testid="leaders"
      />
      <Stat label="Gateway" value={`v${c.gateway.version}`} sub={`up ${f.duration((c.gateway.now_ms - c.gateway.started_at_ms) / 1000)}`} />
    </div>
  );
}

function Stat({ label, value, sub, testid }: { label: string; value: string; sub?: string; testid?: string }) {
  return (
    <div class="card stat" data-testid={testid}>
      <span class="label">{label}</span>
      <span class="big">{value}</span>
      {sub && <span class="sub">{sub}</span>}
    </div>
  );
}

function TrafficCharts({ t }: { t: Traffic }) {
  if (t.points.length === 0) {
    return <p class="muted">Collecting: the first figures appear {t.interval_secs * 2} seconds after the gateway starts.</p>;
  }
  const xs = t.points.map((p) => p.at_ms / 1000);
  const last = t.points[t.points.length - 1];
  const errPct = (x: number, total: number) => (total > 0 ? (100 * x) / total : 0);
  return (
    <>
      <p class="muted small">
        Last {Math.round((t.points.length * t.interval_secs) / 60) || 1} min of <code>/v1/</code> requests, every {t.interval_secs} s
        {last ? ` · now ${f.rate(last.requests_per_sec)} req/s, p99 ${f.ms(last.p99_ms)}` : ""}
      </p>
      <div class="charts">
        <Chart title="Requests per second" xs={xs} unit={(v) => f.rate(v)} series={[{ label: "req/s", color: "#1f6feb", values: t.points.map((p) => p.requests_per_sec) }]} />
        <Chart
          title="Latency"
          xs={xs}
          unit={(v) => (v < 10 ? `${+v.toFixed(1)}ms` : `${Math.round(v)}ms`)}
          series={[
            { label: "p50", color: "#2da44e", values: t.points.map((p) => p.p50_ms ?? null) },
            { label: "p99", color: "#bf8700", values: t.points.map((p) => p.p99_ms ?? null) },
          ]}
        />
        <Chart
          title="Error rate"
          xs={xs}
          unit={(v) => `${v < 10 ? +v.toFixed(1) : Math.round(v)}%`}
          series={[
            { label: "5xx", color: "#cf222e", values: t.points.map((p) => errPct(p.server_errors_per_sec, p.requests_per_sec)) },
            { label: "4xx", color: "#8250df", values: t.points.map((p) => errPct(p.client_errors_per_sec, p.requests_per_sec)) },
          ]}
        />
      </div>
    </>
  );
}

function Members({ c, now }: { c: ClusterOverview; now: number }) {
  return (
    <div class="table-wrap">
      <table data-testid="members">
        <thead>
          <tr>
            <th>Node</th>
            <th>Status</th>
            <th>Last heartbeat</th>
            <th class="num">Leads</th>
            <th class="num hide-narrow">Follows</th>
            <th class="hide-narrow">Version</th>
          </tr>
        </thead>
        <tbody>
          {c.members.map((m) => (
            <tr key={m.id} data-node={m.id}>
              <td>
                <strong class="nowrap">node {m.id}</strong>
                <div class="muted small mono hide-narrow">{m.addr}</div>
              </td>
              <td>
                <UpBadge up={m.up} />
              </td>
              <td class="nowrap" title={m.last_heartbeat_ms ? f.dateTime(m.last_heartbeat_ms) : undefined}>
                {f.ago(m.last_heartbeat_ms, now)}
              </td>
              <td class="num">{f.num(m.leaders)}</td>
              <td class="num hide-narrow">{f.num(m.followers)}</td>
              <td class="hide-narrow">
                {m.version ?? "—"}
                {m.facts !== "ok" && m.facts !== "unreachable" && (
                  <div class="muted small" title={m.facts_detail ?? undefined}>
                    {m.facts === "unsupported" ? "older version: replica state only" : "facts unreadable"}
                  </div>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function UpBadge({ up }: { up: boolean | null | undefined }) {
  if (up === true) return <span class="badge ok">● up</span>;
  if (up === false) return <span class="badge bad">● down</span>;
  return <span class="badge">● unknown</span>;
}

function LeaderBars({ c }: { c: ClusterOverview }) {
  const max = Math.max(1, ...c.members.map((m) => m.leaders ?? 0));
  const fair = c.map.shards / Math.max(1, c.members.filter((m) => m.up).length);
  return (
    <div class="bars" data-testid="leader-bars">
      {c.members.map((m) => (
        <div class="bar-row" key={m.id}>
          <span class="bar-label">node {m.id}</span>
          <span class="bar-track">
            <span class={`bar-fill ${m.up === false ? "down" : ""}`} style={{ width: `${(100 * (m.leaders ?? 0)) / max}%` }} />
          </span>
          <span class="bar-value">{m.leaders === null || m.leaders === undefined ? "—" : m.leaders}</span>
        </div>
      ))}
      <p class="muted small">Balanced: about {Math.round(fair)} per answering node.</p>
    </div>
  );
}

/** Why a node's figures are missing, in a few words (the full detail in a tooltip). */
function factsNote(n: NodeInfo): { label: string; detail: string | undefined } | null {
  switch (n.facts) {
    case "ok":
      return null;
    case "unreachable":
      return { label: "not answering", detail: n.facts_detail ?? undefined };
    case "unsupported":
      return { label: "older version: replica state only", detail: n.facts_detail ?? undefined };
    default:
      return { label: "figures unreadable", detail: n.facts_detail ?? undefined };
  }
}

function plural(n: number, one: string, many: string) {
  return `${n} ${n === 1 ? one : many}`;
}

function cacheHits(n: NodeInfo): string {
  if (!n.block_cache) return "—";
  if (n.block_cache.hit_ratio === null || n.block_cache.hit_ratio === undefined) return "no reads yet";
  return f.percent(n.block_cache.hit_ratio);
}

function NodeName({ n }: { n: NodeInfo }) {
  const note = factsNote(n);
  return (
    <>
      <strong class="nowrap">node {n.id}</strong> <UpBadge up={n.up} />
      {note && (
        <div class="muted small" title={note.detail}>
          {note.label}
        </div>
      )}
      {n.rejoining ? <div class="badge warn">{n.rejoining} rejoining</div> : null}
      {n.wal_poisoned ? <div class="badge bad">WAL failed</div> : null}
    </>
  );
}

function Nodes({ nodes }: { nodes: NodeInfo[] }) {
  const narrow = useNarrow();
  if (narrow) {
    return (
      <div class="node-cards" data-testid="nodes">
        {nodes.map((n) => (
          <div class="card" key={n.id}>
            <div class="node-card-head">
              <NodeName n={n} />
            </div>
            {n.facts === "unreachable" ? null : (
            <dl class="facts compact">
              <dt>Shards hosted</dt>
              <dd>{f.num(n.shards_hosted)}</dd>
              <dt>WAL</dt>
              <dd>
                {f.bytes(n.wal_bytes)}
                {n.wal_files !== null && n.wal_files !== undefined && <span class="muted"> · {plural(n.wal_files, "file", "files")}</span>}
              </dd>
              <dt>Memtables</dt>
              <dd>{f.bytes(n.memtable_bytes)}</dd>
              <dt>Unflushed</dt>
              <dd>{f.bytes(n.unflushed_bytes)}</dd>
              <dt>Segments</dt>
              <dd>
                {f.num(n.segments)}
                {n.segment_bytes !== null && n.segment_bytes !== undefined && <span class="muted"> · {f.bytes(n.segment_bytes)}</span>}
              </dd>
              <dt>Block cache hits</dt>
              <dd>{cacheHits(n)}</dd>
              <dt>Ops/s</dt>
              <dd>{f.rate(n.ops_per_sec)}</dd>
            </dl>
            )}
          </div>
        ))}
      </div>
    );
  }
  return (
    <div class="table-wrap">
      <table data-testid="nodes">
        <thead>
          <tr>
            <th>Node</th>
            <th class="num">Hosted</th>
            <th class="num">WAL</th>
            <th class="num">Memtables</th>
            <th class="num">Unflushed</th>
            <th class="num">Segments</th>
            <th class="num">Block cache hits</th>
            <th class="num">Ops/s</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.id}>
              <td>
                <NodeName n={n} />
              </td>
              <td class="num">{f.num(n.shards_hosted)}</td>
              <td class="num">
                {f.bytes(n.wal_bytes)}
                {n.wal_files !== null && n.wal_files !== undefined && <div class="muted small">{plural(n.wal_files, "file", "files")}</div>}
              </td>
              <td class="num">{f.bytes(n.memtable_bytes)}</td>
              <td class="num">{f.bytes(n.unflushed_bytes)}</td>
              <td class="num">
                {f.num(n.segments)}
                {n.segment_bytes !== null && n.segment_bytes !== undefined && <div class="muted small">{f.bytes(n.segment_bytes)}</div>}
              </td>
              <td class="num">{cacheHits(n)}</td>
              <td class="num">{f.rate(n.ops_per_sec)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
