import { api, bytesToText, base64ToBytes, call, type Schemas } from "../api/client";
import { Empty, Freshness, Pending } from "../components/states";
import * as f from "../format";
import { useNow, usePoll } from "../hooks";
import { hrefOf, linkClick } from "../router";

type HotKey = Schemas["HotKey"];

export function HotKeysPage() {
  const now = useNow();
  const hot = usePoll(() => call(api.GET("/admin/v1/hot-keys", { params: { query: { limit: 20 } } })), 3000);
  const h = hot.data;
  return (
    <div class="page">
      <div class="page-head">
        <h1>Hot keys</h1>
        <Freshness loading={hot.loading} error={hot.error} at={hot.at} now={now} />
      </div>
      {!h ? (
        <Pending error={hot.error} what="hot keys" />
      ) : (
        <>
          {!h.available && (
            <Empty title="This gateway does not track hot keys">
              It runs an older version without the gateway cache tier. The per-shard load on the Shards page shows where traffic goes.
            </Empty>
          )}
          <section>
            <h2>Value cache</h2>
            {h.cache.length === 0 ? (
              <p class="muted" data-testid="no-cache">
                No value cache on this gateway: every read goes to the shard's leader.
              </p>
            ) : (
              <div class="summary">
                {h.cache.map((t) => (
                  <div class="card stat" key={t.tier} data-testid={`cache-tier-${t.tier}`}>
                    <span class="label">{t.tier} tier hit ratio</span>
                    <span class="big">{f.percent(t.hit_ratio)}</span>
                    <span class="sub">
                      {f.num(t.hits)} hits · {f.num(t.misses)} misses
                    </span>
                  </div>
                ))}
              </div>
            )}
          </section>
          {h.available && (
          <div class="two-col">
            <section>
              <h2>Most read{h.window_secs ? ` (last ${h.window_secs} s)` : ""}</h2>
              <KeyTable keys={h.reads} testId="hot-reads" />
            </section>
            <section>
              <h2>Most written{h.window_secs ? ` (last ${h.window_secs} s)` : ""}</h2>
              <KeyTable keys={h.writes} testId="hot-writes" />
            </section>
          </div>
          )}
        </>
      )}
    </div>
  );
}

function KeyTable({ keys, testId }: { keys: HotKey[]; testId: string }) {
  if (keys.length === 0)
    return (
      <p class="muted" data-testid={testId}>
        No keys.
      </p>
    );
  const top = Math.max(1, ...keys.map((k) => k.count));
  return (
    <div class="table-wrap" data-testid={testId}>
      <table>
        <thead>
          <tr>
            <th>Key</th>
            <th class="num">Count</th>
            <th>Share of the hottest</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const text = k.key_encoding === "base64" ? bytesToText(base64ToBytes(k.key)) : k.key;
            const href = `${hrefOf("keys")}?key=${encodeURIComponent(k.key)}&enc=${k.key_encoding}`;
            return (
              <tr key={k.key}>
                <td class="mono">
                  <a href={href} onClick={linkClick}>
                    {text ?? `base64:${k.key}`}
                  </a>
                </td>
                <td class="num">
                  {f.num(k.count)}
                  {k.error > 0 && <span class="muted small"> ±{f.num(k.error)}</span>}
                </td>
                <td>
                  <span class="bar-track">
                    <span class="bar-fill" style={{ width: `${(100 * k.count) / top}%` }} />
                  </span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
