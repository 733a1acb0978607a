import { useMemo, useState } from "preact/hooks";
import { api, call, type ReplicaInfo, type ShardInfo } from "../api/client";
import { Empty, Freshness, Pending } from "../components/states";
import * as f from "../format";
import { useNow, usePoll } from "../hooks";

type Key = "shard" | "leader" | "epoch" | "commit_seq" | "lag" | "segments" | "segment_bytes" | "unflushed_bytes" | "ops_per_sec";

const COLUMNS: { key: Key; label: string; num?: boolean; title?: string; wide?: boolean }[] = [
  { key: "shard", label: "Shard", num: true },
  { key: "leader", label: "Leader", wide: true },
  { key: "epoch", label: "Epoch", num: true, wide: true },
  { key: "lag", label: "Replicas · role · lag", title: "Sorted by the largest follower lag (records)" },
  { key: "commit_seq", label: "Commit seq", num: true, wide: true },
  { key: "segments", label: "Segments", num: true, wide: true },
  { key: "segment_bytes", label: "Segment bytes", num: true, wide: true },
  { key: "unflushed_bytes", label: "Unflushed", num: true, wide: true },
  { key: "ops_per_sec", label: "Ops/s", num: true },
];

/** The class of a cell of column `key` (wide-only columns hide on phones). */
function cls(key: Key, extra?: string): string | undefined {
  const c = COLUMNS.find((x) => x.key === key);
  const parts = [c?.num ? "num" : "", c?.wide ? "hide-narrow" : "", extra ?? ""].filter(Boolean);
  return parts.length ? parts.join(" ") : undefined;
}

function maxLag(s: ShardInfo): number {
  return Math.max(0, ...s.replicas.map((r) => r.lag ?? 0));
}

function sortValue(s: ShardInfo, k: Key): number {
  const v = k === "lag" ? maxLag(s) : s[k];
  return v === null || v === undefined ? -1 : v;
}

export function Shards() {
  const now = useNow();
  const shards = usePoll(() => call(api.GET("/admin/v1/shards")), 2000);
  const [sort, setSort] = useState<{ key: Key; desc: boolean }>({ key: "shard", desc: false });
  const [selected, setSelected] = useState<number | null>(null);
  const [onlyProblems, setOnlyProblems] = useState(false);

  const rows = useMemo(() => {
    const list = (shards.data?.shards ?? []).filter((s) => !onlyProblems || problem(s) !== null);
    const dir = sort.desc ? -1 : 1;
    return [...list].sort((a, b) => dir * (sortValue(a, sort.key) - sortValue(b, sort.key)) || a.shard - b.shard);
  }, [shards.data, sort, onlyProblems]);

  const pick = (shard: number) => {
    setSelected(shard);
    document.getElementById(`shard-${shard}`)?.scrollIntoView({ block: "center", behavior: "smooth" });
  };

  return (
    <div class="page">
      <div class="page-head">
        <h1>Shards</h1>
        <Freshness loading={shards.loading} error={shards.error} at={shards.at} now={now} />
      </div>
      {!shards.data ? (
        <Pending error={shards.error} what="shards" />
      ) : shards.data.shards.length === 0 ? (
        <Empty title="No shards">The shard map has no shards.</Empty>
      ) : (
        <>
          <HeatStrip shards={shards.data.shards} selected={selected} onPick={pick} />
          <div class="toolbar">
            <label class="check">
              <input type="checkbox" checked={onlyProblems} onChange={(e) => setOnlyProblems((e.currentTarget as HTMLInputElement).checked)} />
              Only shards without a leader, with a replica down or lagging
            </label>
            <span class="muted small">
              {rows.length} of {shards.data.shards.length} shards
            </span>
          </div>
          {rows.length === 0 ? (
            <Empty title="Every shard is fine">Each has a serving leader and every replica answers and keeps up.</Empty>
          ) : (
            <div class="table-wrap">
              <table class="shards" data-testid="shards-table">
                <thead>
                  <tr>
                    {COLUMNS.map((c) => (
                      <th key={c.key} class={cls(c.key)} title={c.title} aria-sort={sort.key === c.key ? (sort.desc ? "descending" : "ascending") : "none"}>
                        <button class="sort" onClick={() => setSort((s) => ({ key: c.key, desc: s.key === c.key ? !s.desc : c.key !== "shard" }))}>
                          {c.label}
                          <span class="arrow">{sort.key === c.key ? (sort.desc ? "▼" : "▲") : ""}</span>
                        </button>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((s) => (
                    <tr key={s.shard} id={`shard-${s.shard}`} class={s.shard === selected ? "selected" : problem(s) ? "problem" : undefined} onClick={() => setSelected(s.shard)}>
                      <td class={cls("shard")}>
                        <strong>{s.shard}</strong>
                      </td>
                      <td class={cls("leader", "nowrap")}>{s.leader !== null && s.leader !== undefined ? `node ${s.leader}` : <span class="badge bad">none</span>}</td>
                      <td class={cls("epoch")}>{f.num(s.epoch)}</td>
                      <td class={cls("lag")}>
                        <div class="replicas">
                          {s.replicas.map((r) => (
                            <ReplicaChip key={r.node} r={r} />
                          ))}
                        </div>
                      </td>
                      <td class={cls("commit_seq")}>{f.num(s.commit_seq)}</td>
                      <td class={cls("segments")}>{f.num(s.segments)}</td>
                      <td class={cls("segment_bytes")}>{f.bytes(s.segment_bytes)}</td>
                      <td class={cls("unflushed_bytes")}>{f.bytes(s.unflushed_bytes)}</td>
                      <td class={cls("ops_per_sec")}>{f.rate(s.ops_per_sec)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </div>
  );
}

/** Why a shard needs attention, or null. */
function problem(s: ShardInfo): string | null {
  if (s.leader === null || s.leader === undefined) return "no serving leader";
  if (s.replicas.some((r) => r.up === false)) return "a replica's node is down";
  if (s.replicas.some((r) => r.rejoining)) return "a replica rejoins";
  if (s.replicas.some((r) => (r.lag ?? 0) >= 1000)) return "a replica lags";
  return null;
}

const ROLE_SHORT: Record<string, string> = { leader: "L", follower: "F", candidate: "C", recovering: "R" };

function ReplicaChip({ r }: { r: ReplicaInfo }) {
  const role = r.role ?? "unknown";
  const lag = r.lag !== null && r.lag !== undefined && r.lag > 0 ? ` +${r.lag}` : "";
  const title = [
    `node ${r.node}, rank ${r.rank}`,
    `role ${role}`,
    r.epoch !== null && r.epoch !== undefined ? `epoch ${r.epoch}` : "",
    r.lag !== null && r.lag !== undefined ? `lag ${r.lag} records (as its leader counts)` : "",
    r.applied_seq !== null && r.applied_seq !== undefined ? `applied ${r.applied_seq}` : "",
    r.up === false ? "node down" : "",
  ]
    .filter(Boolean)
    .join(" · ");
  return (
    <span class={`chip role-${r.up === false ? "down" : role}`} title={title}>
      n{r.node} {r.up === false ? "down" : (ROLE_SHORT[role] ?? "?")}
      {r.epoch !== null && r.epoch !== undefined && role !== "unknown" && r.up !== false ? <sub>e{r.epoch}</sub> : null}
      {lag && <span class="lag">{lag}</span>}
    </span>
  );
}

function HeatStrip({ shards, selected, onPick }: { shards: ShardInfo[]; selected: number | null; onPick: (s: number) => void }) {
  const max = Math.max(0, ...shards.map((s) => s.ops_per_sec ?? 0));
  const known = shards.some((s) => s.ops_per_sec !== null && s.ops_per_sec !== undefined);
  return (
    <section class="heat" aria-label="Load per shard">
      <div class="heat-head">
        <h2>Load per shard</h2>
        <span class="muted small">
          {known ? (
            <>
              operations per second over the last 10 s, all replicas · <span class="swatch low" /> 0 <span class="swatch high" /> {f.rate(max)}
            </>
          ) : (
            "measuring: the first figures appear a second after the page opens"
          )}
        </span>
      </div>
      <div class="strip" style={{ gridTemplateColumns: `repeat(${shards.length}, minmax(0, 1fr))` }} data-testid="heat-strip">
        {shards.map((s) => {
          const v = s.ops_per_sec ?? 0;
          const t = max > 0 ? v / max : 0;
          const cls = s.leader === null || s.leader === undefined ? "cell leaderless" : "cell";
          return (
            <button
              key={s.shard}
              class={`${cls}${s.shard === selected ? " selected" : ""}`}
              style={{ backgroundColor: heat(t, known) }}
              title={`shard ${s.shard}: ${f.rate(s.ops_per_sec)} ops/s${s.leader === null || s.leader === undefined ? " · no leader" : ` · leader node ${s.leader}`}`}
              aria-label={`shard ${s.shard}`}
              onClick={() => onPick(s.shard)}
            />
          );
        })}
      </div>
      <div class="strip-axis muted small">
        <span>shard 0</span>
        <span>shard {shards.length - 1}</span>
      </div>
    </section>
  );
}

/** From pale blue (idle) to deep orange (the busiest shard). */
function heat(t: number, known: boolean): string {
  if (!known) return "#e9edf3";
  const a = [226, 236, 248];
  const b = [232, 93, 4];
  const c = a.map((x, i) => Math.round(x + (b[i]! - x) * Math.sqrt(t)));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
