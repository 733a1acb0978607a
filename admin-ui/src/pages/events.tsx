import { useMemo, useState } from "preact/hooks";
import { api, call, type EventItem } from "../api/client";
import { Empty, Freshness, Pending } from "../components/states";
import * as f from "../format";
import { useNarrow, useNow, usePoll } from "../hooks";

const KIND_CLASS: Record<string, string> = {
  became_leader: "ok",
  handed_over: "info",
  stepped_down: "warn",
  member_up: "ok",
  member_down: "bad",
  wal_failed: "bad",
  node_started: "info",
};

/** Events rendered at first (and added per "Show more"). */
const PAGE = 100;

export function Events() {
  const now = useNow();
  const events = usePoll(() => call(api.GET("/admin/v1/events", { params: { query: { limit: 500 } } })), 3000);
  const [kind, setKind] = useState("");
  const [node, setNode] = useState("");
  const [text, setText] = useState("");
  const [shownCount, setShownCount] = useState(PAGE);
  const narrow = useNarrow();

  const list = events.data?.events ?? [];
  const counts = useMemo(() => {
    const m = new Map<string, number>();
    for (const e of list) m.set(e.kind, (m.get(e.kind) ?? 0) + 1);
    return [...m].sort((a, b) => a[0].localeCompare(b[0]));
  }, [list]);
  const kinds = counts.map(([k]) => k);
  const nodes = useMemo(() => [...new Set(list.map((e) => e.node))].sort((a, b) => a - b), [list]);
  const shown = list.filter(
    (e) =>
      (!kind || e.kind === kind) &&
      (!node || String(e.node) === node || String(e.peer ?? "") === node) &&
      (!text || e.message.toLowerCase().includes(text.toLowerCase())),
  );

  return (
    <div class="page">
      <div class="page-head">
        <h1>Events</h1>
        <Freshness loading={events.loading} error={events.error} at={events.at} now={now} />
      </div>
      <p class="muted small">
        Leader changes, handovers and node starts as each node recorded them (its own clock), and members that stopped or resumed answering as this gateway saw it. Newest first.
      </p>
      {events.data && events.data.missing_from.length > 0 && (
        <p class="notice">
          No events from {events.data.missing_from.map((n) => `node ${n}`).join(", ")}: down, or an older version. What they recorded before is lost if they crashed.
        </p>
      )}
      {counts.length > 0 && (
        <div class="kind-summary" aria-label="Events by kind">
          {counts.map(([k, n]) => (
            <button key={k} class={kind === k ? "active" : undefined} onClick={() => setKind(kind === k ? "" : k)} title={`show only ${k.replace(/_/g, " ")}`}>
              <span class={`dot ${KIND_CLASS[k] ?? ""}`} /> {k.replace(/_/g, " ")} · {n}
            </button>
          ))}
        </div>
      )}
      <div class="toolbar filters">
        <label>
          Kind
          <select aria-label="Kind" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">all</option>
            {kinds.map((k) => (
              <option key={k} value={k}>
                {k.replace(/_/g, " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Node
          <select aria-label="Node" value={node} onChange={(e) => setNode((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">all</option>
            {nodes.map((n) => (
              <option key={n} value={String(n)}>
                node {n}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          Search
          <input type="search" value={text} placeholder="shard 12, epoch…" onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
        </label>
      </div>
      {!events.data ? (
        <Pending error={events.error} what="events" />
      ) : list.length === 0 ? (
        <Empty title="No events yet">Leader changes, handovers and members going down will show here.</Empty>
      ) : shown.length === 0 ? (
        <Empty title="No event matches the filters" />
      ) : narrow ? (
        <>
          <ul class="event-list" data-testid="events-list">
            {shown.slice(0, shownCount).map((e) => (
              <li key={`${e.source}-${e.node}-${e.at_ms}-${e.kind}-${e.shard ?? ""}`} data-kind={e.kind}>
                <div class="when">
                  <span title={f.dateTime(e.at_ms)}>{f.clock(e.at_ms)}</span>
                  <span class={`badge ${KIND_CLASS[e.kind] ?? ""}`}>{e.kind.replace(/_/g, " ")}</span>
                  <span>{f.ago(e.at_ms, now)}</span>
                </div>
                {e.message}
              </li>
            ))}
          </ul>
          <More total={shown.length} count={shownCount} onMore={() => setShownCount((c) => c + PAGE)} />
        </>
      ) : (
        <>
        <div class="table-wrap">
          <table class="events" data-testid="events-table">
            <thead>
              <tr>
                <th>Time</th>
                <th>Source</th>
                <th>Kind</th>
                <th class="num">Shard</th>
                <th>What happened</th>
              </tr>
            </thead>
            <tbody>
              {shown.slice(0, shownCount).map((e) => (
                <EventRow key={`${e.source}-${e.node}-${e.at_ms}-${e.kind}-${e.shard ?? ""}`} e={e} now={now} />
              ))}
            </tbody>
          </table>
        </div>
        <More total={shown.length} count={shownCount} onMore={() => setShownCount((c) => c + PAGE)} />
        </>
      )}
    </div>
  );
}

function More({ total, count, onMore }: { total: number; count: number; onMore: () => void }) {
  if (total <= count) return null;
  return (
    <div class="more">
      <button onClick={onMore}>
        Show {Math.min(PAGE, total - count)} more ({total - count} older)
      </button>
    </div>
  );
}

function EventRow({ e, now }: { e: EventItem; now: number }) {
  return (
    <tr data-kind={e.kind}>
      <td class="nowrap" title={f.dateTime(e.at_ms)}>
        {f.clock(e.at_ms)}
        <div class="muted small">{f.ago(e.at_ms, now)}</div>
      </td>
      <td class="nowrap">{e.source === "gateway" ? "gateway" : `node ${e.node}`}</td>
      <td>
        <span class={`badge ${KIND_CLASS[e.kind] ?? ""}`}>{e.kind.replace(/_/g, " ")}</span>
      </td>
      <td class="num">{e.shard ?? ""}</td>
      <td>{e.message}</td>
    </tr>
  );
}
