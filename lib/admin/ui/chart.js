// @ts-check
/// <reference lib="dom" />
/**
 * A live time-series chart on the vendored uPlot (loaded as a classic script before the modules, so it is the
 * global `uPlot`). Columnar data: the history backfill arrives as columns and live points append to them.
 *
 * @module
 */

/**
 * The part of uPlot's API used here.
 * @typedef {{ setData(data: (number | null)[][]): void, setSize(size: { width: number, height: number }): void,
 *   destroy(): void }} UPlotChart
 * @typedef {new (options: object, data: (number | null)[][], target: HTMLElement) => UPlotChart} UPlotConstructor
 */

/** @typedef {{ label: string, color: string, format?: (value: number) => string }} SeriesSpec */

/** Points kept per chart: an hour of 10 s history plus ten minutes of 1 s points. */
const MAX_POINTS = 360 + 600;
const HEIGHT = 170;
/** Seconds the time axis spans at least. */
const MIN_SPAN_S = 60;

/** @returns {UPlotConstructor | undefined} */
function uPlotGlobal() {
  return /** @type {{ uPlot?: UPlotConstructor }} */ (/** @type {unknown} */ (globalThis)).uPlot;
}

/** A chart of one or more series against time (seconds). */
export class LiveChart {
  /** @type {(number | null)[][]} */
  #data;
  /** @type {UPlotChart | undefined} */
  #plot;
  /** @type {ResizeObserver | undefined} */
  #resize;

  /**
   * @param {HTMLElement} target an empty element, whose width the chart follows
   * @param {readonly SeriesSpec[]} series
   */
  constructor(target, series) {
    this.#data = [[], ...series.map(() => [])];
    const UPlot = uPlotGlobal();
    if (UPlot === undefined) {
      target.textContent = "Charts unavailable (uPlot did not load).";
      return;
    }
    const format = series[0]?.format ?? String;
    const options = {
      width: Math.max(200, target.clientWidth),
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      // At least the last minute, so a few live points do not stretch into sub-second ticks.
      scales: {
        x: {
          time: true,
          range: (/** @type {unknown} */ _u, /** @type {number} */ min, /** @type {number} */ max) => [
            Math.min(min, max - MIN_SPAN_S),
            max,
          ],
        },
      },
      legend: { show: true, live: true },
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          points: { show: false },
          value: (/** @type {unknown} */ _u, /** @type {number | null} */ v) => v === null ? "–" : format(v),
        })),
      ],
      axes: [
        { stroke: "#8a94a6", grid: { stroke: "#e7eaf0" } },
        {
          stroke: "#8a94a6",
          grid: { stroke: "#e7eaf0" },
          size: 60,
          values: (/** @type {unknown} */ _u, /** @type {number[]} */ ticks) => ticks.map((t) => format(t)),
        },
      ],
    };
    this.#plot = new UPlot(options, this.#data, target);
    this.#resize = new ResizeObserver(() => {
      this.#plot?.setSize({ width: Math.max(200, target.clientWidth), height: HEIGHT });
    });
    this.#resize.observe(target);
  }

  /**
   * Replaces the data with history columns (`t` in seconds or milliseconds since the epoch).
   * @param {readonly number[]} t
   * @param {readonly (readonly (number | null)[])[]} columns one per series
   * @returns {void}
   */
  backfill(t, columns) {
    const scale = t.length > 0 && (t[0] ?? 0) > 1e11 ? 1000 : 1;
    const times = t.map((x) => x / scale);
    // Live points that arrived before the history stay, after it.
    const last = times[times.length - 1] ?? -Infinity;
    const live = (this.#data[0] ?? []).findIndex((x) => x !== null && x > last);
    const keep = live === -1 ? [] : this.#data.map((column) => column.slice(live));
    this.#data = [
      [...times, ...(keep[0] ?? [])],
      ...columns.map((c, i) => [...c, ...(keep[i + 1] ?? [])]),
    ];
    this.#trimAndDraw();
  }

  /**
   * Appends one point (time in milliseconds since the epoch).
   * @param {number} atMs
   * @param {readonly (number | null)[]} values one per series
   * @returns {void}
   */
  push(atMs, values) {
    const t = atMs / 1000;
    const times = this.#data[0] ?? [];
    const last = times[times.length - 1];
    if (last !== undefined && last !== null && t <= last) return;
    times.push(t);
    values.forEach((v, i) => this.#data[i + 1]?.push(v));
    this.#trimAndDraw();
  }

  /** @returns {void} */
  destroy() {
    this.#resize?.disconnect();
    this.#plot?.destroy();
  }

  /** @returns {void} */
  #trimAndDraw() {
    const extra = (this.#data[0]?.length ?? 0) - MAX_POINTS;
    if (extra > 0) this.#data = this.#data.map((column) => column.slice(extra));
    this.#plot?.setData(this.#data);
  }
}
