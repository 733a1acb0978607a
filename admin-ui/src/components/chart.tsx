// A time-series chart (uPlot) that fills its container's width.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  color: string;
  /** One value per x (null: no data). */
  values: (number | null)[];
}

export interface ChartProps {
  title: string;
  /** Unix seconds. */
  xs: number[];
  series: Series[];
  /** Axis value formatter (short: the axis is 56 px wide). */
  unit: (v: number) => string;
  /** Seconds the x axis spans at least (ending at the last point). */
  span?: number;
  height?: number;
}

function showLatest(u: uPlot) {
  const n = u.data[0].length;
  if (n > 0) u.setLegend({ idx: n - 1 });
}

export function Chart({ title, xs, series, unit, span = 60, height = 170 }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => `${s.label}:${s.color}`).join("|");
  // The x axis always spans at least `span` seconds, ending at the newest point: a few
  // points do not stretch over a range of years.
  const spanRef = useRef(span);
  spanRef.current = span;

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      // The legend shows the values under the cursor, and the newest ones otherwise.
      hooks: {
        setCursor: [
          (u) => {
            if (u.cursor.idx === null || u.cursor.idx === undefined) showLatest(u);
          },
        ],
      },
      scales: {
        x: {
          time: true,
          // From the data, not uPlot's guess (it widens a single point to a day).
          range: (u, min, max) => {
            const xs = u.data[0];
            const first = xs[0] ?? min;
            const last = xs[xs.length - 1] ?? max;
            return [Math.min(first, last - spanRef.current), last];
          },
        },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
      axes: [
        { stroke: "#5b6472", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#d5d9e0" }, font: "11px system-ui, sans-serif" },
        {
          stroke: "#5b6472",
          grid: { stroke: "#eef0f3" },
          ticks: { stroke: "#d5d9e0" },
          font: "11px system-ui, sans-serif",
          size: 60,
          values: (_u, vals) => vals.map((v) => unit(v)),
        },
      ],
      series: [
        { value: (_u: uPlot, v: number | null) => (v === null ? "—" : new Date(v * 1000).toLocaleTimeString()) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          points: { size: 5 },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null ? "—" : unit(v)),
        })),
      ],
    };
    const u = new uPlot(opts, [xs, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    showLatest(u);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      u.setSize({ width: Math.max(200, el.clientWidth), height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series change shape; data updates go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, height]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData([xs, ...series.map((s) => s.values)] as uPlot.AlignedData);
    if (u.cursor.idx === null || u.cursor.idx === undefined) showLatest(u);
  });

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-box" />
    </figure>
  );
}
