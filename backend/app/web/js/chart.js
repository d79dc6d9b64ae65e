// The price chart: candles and volume drawn by Lightweight Charts (the vendored bundle, which
// index.html loads first as the global `LightweightCharts`), the forecast overlay on top, and
// the OHLC read-out of the bar under the crosshair.

import { alpha, hexOf, theme } from './colors.js';
import { $, cssVar, el } from './dom.js';
import { fmtCompact, fmtNumber, fmtTime } from './format.js';
import { ForecastOverlay, WHISKER_STEP } from './overlay.js';
import { forecastScene, gridOf } from './scene.js';
import { getState, redraws } from './state.js';

const LW = window.LightweightCharts;
const DAY = 86400;
const chartEl = $('chart');
const overlay = new ForecastOverlay();
let chart = null;
let candleSeries = null;
let volumeSeries = null;

export const chartLibraryLoaded = () => Boolean(LW);
export const shownScene = () => overlay.scene;

export function setChartState(name) {
  chartEl.dataset.state = name;
}

export function showChartMessage(text) {
  const message = $('chart-message');
  message.hidden = !text;
  message.textContent = text || '';
}

// Prices and times are formatted when drawn, so they follow the coin and timeframe shown.
function chartOptions() {
  const t = theme();
  return {
    autoSize: true,
    layout: {
      background: { type: LW.ColorType.Solid, color: t.card },
      textColor: t.muted,
      fontSize: 11,
      fontFamily: cssVar('--sans'),
      attributionLogo: true, // the library's licence asks for the link to TradingView
    },
    grid: { vertLines: { color: t.grid }, horzLines: { color: t.grid } },
    rightPriceScale: { borderColor: t.border, scaleMargins: { top: 0.08, bottom: 0.2 } },
    timeScale: { borderColor: t.border, timeVisible: true, secondsVisible: false, rightOffset: 2 },
    crosshair: { mode: LW.CrosshairMode.Normal },
    localization: {
      priceFormatter: (price) => fmtNumber(price, getState().decimals),
      timeFormatter: (time) => fmtTime(time, { time: intervalSeconds() < DAY }),
    },
  };
}

const intervalSeconds = () => getState().vocabulary?.secondsOf(getState().interval);

function seriesColors() {
  const t = theme();
  return { upColor: t.up, downColor: t.down, wickUpColor: t.up, wickDownColor: t.down, borderVisible: false };
}

export function createPriceChart() {
  chart = LW.createChart(chartEl, chartOptions());
  candleSeries = chart.addSeries(LW.CandlestickSeries, { ...seriesColors(), priceLineVisible: true, lastValueVisible: true });
  volumeSeries = chart.addSeries(LW.HistogramSeries, {
    priceScaleId: 'volume',
    priceFormat: { type: 'volume' },
    lastValueVisible: false,
    priceLineVisible: false,
  });
  chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.84, bottom: 0 } });
  candleSeries.attachPrimitive(overlay);
  chart.subscribeCrosshairMove((param) => {
    const bar = param.time !== undefined ? param.seriesData.get(candleSeries) : null;
    showOhlc(bar && bar.open !== undefined ? bar : null);
  });
}

// A load, a new colour scheme or a hidden model redraws the chart; a new focus the overlay.
export function showChart(state, event) {
  if (event.changed.has('scheme')) {
    chart.applyOptions(chartOptions());
    candleSeries.applyOptions(seriesColors());
  }
  if (redraws(event) || event.changed.has('hidden')) renderChart(state, event.refit);
  else if (event.changed.has('focus') && state.series) overlay.set(forecastScene(state, theme()));
}

function renderChart(state, fit) {
  const series = state.series;
  if (!series) return;
  const candles = series.candles;
  Object.assign(chartEl.dataset, { symbol: state.symbol, interval: series.interval, candles: String(candles.length), query: series.query });
  const scene = forecastScene(state, theme());
  chartEl.dataset.forecastModels = String(scene.models.length);
  chartEl.dataset.gaps = String(scene.gaps.length);
  const { bars, volumes } = chartData(series, state.vocabulary, scene.futureUntil || 0);
  candleSeries.applyOptions({ priceFormat: { type: 'price', precision: state.decimals, minMove: 10 ** -state.decimals } });
  candleSeries.setData(bars);
  volumeSeries.setData(volumes);
  overlay.set(scene);
  showOhlc(null);
  chartEl.setAttribute('aria-label', chartLabel(state, scene));
  showChartMessage(chartMessage(state));
  if (fit && candles.length) frame(state, scene);
  setChartState('ready');
}

function chartData(series, vocabulary, futureUntil) {
  const { t0, iv } = gridOf(series, vocabulary);
  const t = theme();
  const bars = [];
  const volumes = [];
  let expected = t0;
  for (const c of series.candles) {
    for (; expected < c.time; expected += iv) bars.push({ time: expected }); // a gap: keep the time axis true
    const color = hexOf(c.close >= c.open ? t.up : t.down);
    const bar = { time: c.time, open: c.open, high: c.high, low: c.low, close: c.close };
    if (c.forming) Object.assign(bar, { color: alpha(color, 0.45), wickColor: alpha(color, 0.6) });
    bars.push(bar);
    volumes.push({ time: c.time, value: c.volume, color: alpha(color, 0.28) });
    expected = c.time + iv;
  }
  if (series.candles.length) for (; expected <= futureUntil; expected += iv) bars.push({ time: expected });
  return { bars, volumes };
}

function chartLabel({ symbol, series }, scene) {
  const candles = series.candles;
  if (!candles.length) return `${symbol}: no candles`;
  const span = `${candles.length} candles from ${fmtTime(candles[0].time)} to ${fmtTime(candles[candles.length - 1].time)} UTC`;
  const models = scene.models.length ? `, with forecasts of ${scene.models.length} models` : '';
  return `${symbol} ${series.interval} candlestick chart: ${span}${models}`;
}

function chartMessage({ symbol, coverage, series }) {
  if (!coverage?.count) return `No candles are stored for ${symbol} yet. Load some with: cryptopredict ingest-csv FILE --symbol ${symbol}`;
  if (!series.candles.length) return 'No candles in this range. Pick other dates or press “Latest”.';
  return '';
}

// Show the newest stretch and the chosen horizon ahead of it; a chosen range is shown whole.
function frame(state, scene) {
  const candles = state.series.candles;
  const grid = gridOf(state.series, state.vocabulary);
  const lastIndex = (candles[candles.length - 1].time - grid.t0) / grid.iv;
  const point = scene.models.flatMap((m) => m.points).find((p) => p.horizon === state.horizon);
  const lead = scene.origin !== null && point ? Math.max(1, point.logical - lastIndex) : 0;
  // Room right of the target for the whiskers, in pixels turned into bars.
  const room = scene.models.length ? 36 + scene.models.length * WHISKER_STEP : 24;
  const width = Math.max(chart.timeScale().width(), room + 200);
  const history = state.from || state.to ? lastIndex + 1 : Math.min(lastIndex + 1, Math.max(90, Math.round(lead * 4)));
  const margin = (room * (history + lead)) / (width - room);
  chart.timeScale().setVisibleLogicalRange({ from: lastIndex - history, to: lastIndex + lead + margin });
}

// The bar under the crosshair, or the newest one.
function showOhlc(bar) {
  const { series, decimals } = getState();
  const candles = series?.candles ?? [];
  const shown = bar ?? candles[candles.length - 1];
  const box = $('ohlc');
  box.replaceChildren();
  if (!shown) return;
  const source = candles.find((c) => c.time === shown.time) ?? shown;
  const price = (value) => fmtNumber(value, decimals);
  box.append(
    el('span', {}, fmtTime(shown.time, { time: !(intervalSeconds() >= DAY) }), ' UTC'),
    el('span', {}, 'O ', el('b', { text: price(shown.open) })),
    el('span', {}, 'H ', el('b', { text: price(shown.high) })),
    el('span', {}, 'L ', el('b', { text: price(shown.low) })),
    el('span', {}, 'C ', el('b', { class: shown.close >= shown.open ? 'up' : 'down', text: price(shown.close) })),
    el('span', {}, 'V ', el('b', { text: fmtCompact(source.volume) })),
  );
  if (source.forming) box.append(el('span', { class: 'tag', title: 'its period has not ended in the stored data', text: 'forming' }));
}
