// CryptoPredict dashboard: plain ES module, no build step. It reads only the public API
// (the same JSON any client gets) and draws with the vendored Lightweight Charts bundle,
// loaded by index.html as the global `LightweightCharts`.

const LW = window.LightweightCharts;

// ---------------------------------------------------------------- vocabulary

const SECONDS = { '1m': 60, '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '4h': 14400, '1d': 86400, '1w': 604800 };
const INTERVALS = ['1h', '4h', '1d', '1w'];
const HORIZONS = { '1h': 3600, '4h': 14400, '24h': 86400, '7d': 604800 };
// The newest-candles view asks for page sizes the API caches.
const DEFAULT_LIMIT = { '1h': 1000, '4h': 1000, '1d': 1000, '1w': 500 };
const RANGE_PAGE = 5000;
const MAX_PAGES = 8;
const HEALTH_EVERY_MS = 30_000;
const INTERVAL_WORDS = { '1m': 'minute', '5m': '5-minute', '15m': '15-minute', '30m': '30-minute', '1h': 'hourly', '4h': '4-hour', '1d': 'daily', '1w': 'weekly' };
const SVG_NS = 'http://www.w3.org/2000/svg';
const WHISKER_STEP = 8; // px between the models' band whiskers

// ---------------------------------------------------------------- small helpers

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'style') for (const [k, v] of Object.entries(value)) node.style.setProperty(k, v);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === 'style') for (const [k, v] of Object.entries(value)) node.style.setProperty(k, v);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const epoch = (iso) => Math.floor(Date.parse(iso) / 1000);
const pad = (n) => String(n).padStart(2, '0');

function fmtTime(seconds, { time = true } = {}) {
  const d = new Date(seconds * 1000);
  const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return time ? `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}` : day;
}

const numberFormats = new Map();
function fmtNumber(value, decimals) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  let format = numberFormats.get(decimals);
  if (!format) {
    format = new Intl.NumberFormat('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
    numberFormats.set(decimals, format);
  }
  return format.format(value);
}

function decimalsFor(price) {
  if (!price || price >= 1) return 2;
  if (price >= 0.01) return 4;
  return 6;
}

const fmtPrice = (value) => fmtNumber(value, state.decimals);
// Bands are read as ranges: whole dollars are enough once prices run into the thousands.
const fmtBand = (lower, upper) => {
  const decimals = Math.abs(upper ?? 0) >= 1000 ? 0 : state.decimals;
  return `${fmtNumber(lower, decimals)} – ${fmtNumber(upper, decimals)}`;
};
const fmtPct = (fraction, digits = 1) => (fraction === null || fraction === undefined ? '—' : `${fmtNumber(fraction * 100, digits)}%`);
function fmtChange(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '—';
  const sign = fraction > 0 ? '+' : fraction < 0 ? '−' : '±';
  return `${sign}${fmtNumber(Math.abs(fraction) * 100, 2)}%`;
}
function fmtCompact(value) {
  if (value === null || value === undefined) return '—';
  return new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 }).format(value);
}
function fmtDuration(seconds) {
  if (seconds % 604800 === 0) return `${seconds / 604800}w`;
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  return `${Math.round(seconds / 60)}m`;
}

class ApiError extends Error {
  constructor(status, problem, path) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.path = path;
  }
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: 'application/json' } });
  } catch (error) {
    throw new ApiError(0, { detail: 'the API did not answer' }, path);
  }
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, body, path);
  return body;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- state

const state = {
  coins: [],
  models: [],
  colors: new Map(),
  symbol: null,
  interval: null,
  horizon: null,
  from: '',
  to: '',
  hidden: new Set(),
  focus: null, // model whose bands are drawn as a cone; null: the champion
  decimals: 2,
  coverage: null,
  latest: null,
  price: null,
  series: null, // { candles, interval, query, complete }
  board: null, // { data } or { missing } or { error }
};

function readUrl() {
  const params = new URLSearchParams(location.search);
  const coin = params.get('coin');
  if (coin && /^[A-Za-z0-9]{1,10}$/.test(coin)) state.symbol = coin.toUpperCase();
  if (INTERVALS.includes(params.get('tf'))) state.interval = params.get('tf');
  if (params.get('h') in HORIZONS) state.horizon = params.get('h');
  for (const key of ['from', 'to']) {
    const value = params.get(key);
    if (value && /^\d{4}-\d{2}-\d{2}$/.test(value)) state[key] = value;
  }
}

function writeUrl() {
  const params = new URLSearchParams();
  if (state.symbol) params.set('coin', state.symbol);
  if (state.interval) params.set('tf', state.interval);
  if (state.horizon) params.set('h', state.horizon);
  if (state.from) params.set('from', state.from);
  if (state.to) params.set('to', state.to);
  history.replaceState(null, '', `${location.pathname}?${params}`);
}

// ---------------------------------------------------------------- colours

const PALETTES = {
  dark: { baseline: '#e2e8f0', others: ['#38bdf8', '#fbbf24', '#f472b6', '#a78bfa', '#fb923c', '#4ade80', '#e879f9', '#facc15'] },
  light: { baseline: '#334155', others: ['#0284c7', '#d97706', '#db2777', '#7c3aed', '#ea580c', '#16a34a', '#c026d3', '#ca8a04'] },
};
const darkQuery = window.matchMedia('(prefers-color-scheme: light)');
const palette = () => (darkQuery.matches ? PALETTES.light : PALETTES.dark);

function assignColors() {
  const names = state.models.map((m) => m.name);
  const baseline = state.models.find((m) => m.baseline)?.name ?? 'random_walk';
  state.baseline = baseline;
  const { baseline: baseColor, others } = palette();
  state.colors.clear();
  let i = 0;
  for (const name of names) state.colors.set(name, name === baseline ? baseColor : others[i++ % others.length]);
}

function colorOf(model) {
  if (!state.colors.has(model)) {
    const { others } = palette();
    state.colors.set(model, others[state.colors.size % others.length]);
  }
  return state.colors.get(model);
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

// ---------------------------------------------------------------- forecast overlay
// A series primitive: draws gaps and the future region behind the candles, and each model's
// forecast path, its bands at the chosen horizon and the focused model's 80/95% cone on top.
// Times are mapped to logical indexes of the regular grid the candles sit on, so points fall
// between bars exactly where their timestamps are.

class ForecastOverlay {
  constructor() {
    this.scene = null;
    this.chart = null;
    this.series = null;
    this.requestUpdate = null;
    const overlay = this;
    this.views = [
      { zOrder: () => 'bottom', renderer: () => ({ draw: (target) => overlay.drawBehind(target) }) },
      { zOrder: () => 'normal', renderer: () => ({ draw: (target) => overlay.drawFront(target) }) },
    ];
  }

  attached({ chart, series, requestUpdate }) {
    this.chart = chart;
    this.series = series;
    this.requestUpdate = requestUpdate;
  }

  detached() {
    this.chart = this.series = this.requestUpdate = null;
  }

  paneViews() {
    return this.views;
  }

  set(scene) {
    this.scene = scene;
    if (this.requestUpdate) this.requestUpdate();
  }

  autoscaleInfo(from, to) {
    const scene = this.scene;
    if (!scene) return null;
    let min = Infinity;
    let max = -Infinity;
    for (const model of scene.models) {
      if (!model.visible) continue;
      for (const point of model.points) {
        if (point.logical < from - 1 || point.logical > to + 1) continue;
        const bands = point.horizon === scene.horizon || model.focused;
        min = Math.min(min, bands ? point.lower95 ?? point.price : point.price);
        max = Math.max(max, bands ? point.upper95 ?? point.price : point.price);
      }
    }
    return Number.isFinite(min) ? { priceRange: { minValue: min, maxValue: max } } : null;
  }

  // The library maps whole logical indexes only; in between, interpolate.
  x(logical) {
    const scale = this.chart.timeScale();
    const whole = Math.floor(logical);
    const a = scale.logicalToCoordinate(whole);
    if (a === null || logical === whole) return a;
    const b = scale.logicalToCoordinate(whole + 1);
    return b === null ? a : a + (logical - whole) * (b - a);
  }

  y(price) {
    return this.series.priceToCoordinate(price);
  }

  drawBehind(target) {
    const scene = this.scene;
    if (!scene || !this.chart) return;
    target.useMediaCoordinateSpace(({ context: ctx, mediaSize }) => {
      const { width, height } = mediaSize;
      ctx.save();
      ctx.font = `11px ${cssVar('--sans') || 'sans-serif'}`;
      for (const gap of scene.gaps) {
        const a = this.x(gap.from);
        const b = this.x(gap.to);
        if (a === null || b === null || b < 0 || a > width) continue;
        const left = Math.max(a, -2);
        const right = Math.min(Math.max(b, a + 2), width + 2);
        ctx.fillStyle = scene.theme.gap;
        ctx.fillRect(left, 0, right - left, height);
        ctx.strokeStyle = scene.theme.gapEdge;
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.save();
        ctx.rect(left, 0, right - left, height);
        ctx.clip();
        for (let s = left - height; s < right; s += 9) {
          ctx.moveTo(s, height);
          ctx.lineTo(s + height, 0);
        }
        ctx.globalAlpha = 0.35;
        ctx.stroke();
        ctx.restore();
        ctx.fillStyle = scene.theme.gapText;
        if (right - left > 70) ctx.fillText(gap.label, left + 6, 40);
        else if (right - left > 2) {
          ctx.save();
          ctx.translate(left + (right - left) / 2 + 4, 32);
          ctx.rotate(Math.PI / 2);
          ctx.fillText(gap.label, 0, 0);
          ctx.restore();
        }
      }
      if (scene.origin !== null) {
        const x0 = this.x(scene.origin);
        if (x0 !== null && x0 < width) {
          ctx.fillStyle = scene.theme.future;
          ctx.fillRect(Math.max(x0, 0), 0, width - Math.max(x0, 0), height);
          if (x0 >= 0) {
            ctx.strokeStyle = scene.theme.faint;
            ctx.setLineDash([3, 4]);
            ctx.beginPath();
            ctx.moveTo(Math.round(x0) + 0.5, 0);
            ctx.lineTo(Math.round(x0) + 0.5, height);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.fillStyle = scene.theme.muted;
            ctx.fillText('forecast →', x0 + 6, 40);
          }
        }
      }
      ctx.restore();
    });
  }

  drawFront(target) {
    const scene = this.scene;
    if (!scene || !this.chart || scene.origin === null) return;
    const ox = this.x(scene.origin);
    const oy = this.y(scene.originPrice);
    if (ox === null || oy === null) return;
    target.useMediaCoordinateSpace(({ context: ctx, mediaSize }) => {
      ctx.save();
      ctx.lineJoin = 'round';
      ctx.lineCap = 'round';
      const visible = scene.models.filter((m) => m.visible);
      const focused = visible.find((m) => m.focused);
      if (focused) this.drawCone(ctx, focused, ox, oy);
      for (const model of visible) this.drawPath(ctx, model, ox, oy, scene.horizon);
      this.drawWhiskers(ctx, visible, scene.horizon, ox, mediaSize.width);
      ctx.restore();
    });
  }

  project(points, key) {
    const out = [];
    for (const point of points) {
      const value = point[key];
      if (value === null || value === undefined) return null;
      const x = this.x(point.logical);
      const y = this.y(value);
      if (x === null || y === null) return null;
      out.push([x, y]);
    }
    return out;
  }

  drawCone(ctx, model, ox, oy) {
    for (const [lower, upper, a] of [['lower95', 'upper95', 0.1], ['lower80', 'upper80', 0.16]]) {
      const top = this.project(model.points, upper);
      const bottom = this.project(model.points, lower);
      if (!top || !bottom || !top.length) continue;
      ctx.beginPath();
      ctx.moveTo(ox, oy);
      for (const [x, y] of top) ctx.lineTo(x, y);
      for (const [x, y] of bottom.reverse()) ctx.lineTo(x, y);
      ctx.closePath();
      ctx.fillStyle = alpha(model.color, a);
      ctx.fill();
    }
  }

  drawPath(ctx, model, ox, oy, horizon) {
    const points = this.project(model.points, 'price');
    if (!points || !points.length) return;
    ctx.strokeStyle = model.color;
    ctx.lineWidth = model.focused ? 2.25 : 1.5;
    ctx.globalAlpha = model.focused ? 1 : 0.85;
    ctx.beginPath();
    ctx.moveTo(ox, oy);
    for (const [x, y] of points) ctx.lineTo(x, y);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = model.color;
    model.points.forEach((point, i) => {
      if (point.horizon === horizon) return; // drawn with its bands
      ctx.beginPath();
      ctx.arc(points[i][0], points[i][1], 2.5, 0, Math.PI * 2);
      ctx.fill();
    });
  }

  // One whisker per model at the chosen horizon, side by side around the target time (moved
  // right when the target is so close that the group would cover the last candle).
  drawWhiskers(ctx, models, horizon, ox, mediaWidth) {
    const items = models
      .map((model) => ({ model, point: model.points.find((p) => p.horizon === horizon) }))
      .filter((item) => item.point);
    const step = WHISKER_STEP;
    items.forEach(({ model, point }, k) => {
      const x0 = this.x(point.logical);
      if (x0 === null) return;
      const first = Math.max(x0 - ((items.length - 1) / 2) * step, ox + 8);
      const x = first + k * step;
      const y = this.y(point.price);
      const y95 = [this.y(point.lower95), this.y(point.upper95)];
      const y80 = [this.y(point.lower80), this.y(point.upper80)];
      ctx.strokeStyle = model.color;
      if (y95[0] !== null && y95[1] !== null) {
        ctx.lineWidth = 1.25;
        ctx.beginPath();
        ctx.moveTo(x, y95[0]);
        ctx.lineTo(x, y95[1]);
        ctx.moveTo(x - 2.5, y95[0]);
        ctx.lineTo(x + 2.5, y95[0]);
        ctx.moveTo(x - 2.5, y95[1]);
        ctx.lineTo(x + 2.5, y95[1]);
        ctx.stroke();
      }
      if (y80[0] !== null && y80[1] !== null) {
        ctx.lineWidth = 5;
        ctx.lineCap = 'butt';
        ctx.globalAlpha = 0.55;
        ctx.beginPath();
        ctx.moveTo(x, y80[0]);
        ctx.lineTo(x, y80[1]);
        ctx.stroke();
        ctx.globalAlpha = 1;
        ctx.lineCap = 'round';
      }
      if (y !== null) {
        ctx.beginPath();
        ctx.arc(x, y, model.focused ? 4.5 : 3.5, 0, Math.PI * 2);
        ctx.fillStyle = model.color;
        ctx.fill();
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = this.scene.theme.card;
        ctx.stroke();
      }
      if (model.focused && y !== null) {
        const text = fmtPrice(point.price);
        ctx.font = `600 11px ${cssVar('--sans') || 'sans-serif'}`;
        // Left of the whole group of whiskers, where the price axis cannot cut it off.
        const w = ctx.measureText(text).width + 10;
        const groupRight = first + (items.length - 1) * step;
        const fitsLeft = first - 10 - w >= ox + 4;
        const fitsRight = groupRight + 10 + w <= mediaWidth;
        const left = fitsLeft || !fitsRight ? Math.max(first - 10 - w, 0) : groupRight + 10;
        ctx.fillStyle = this.scene.theme.card;
        ctx.globalAlpha = 0.85;
        ctx.fillRect(left, y - 9, w, 18);
        ctx.globalAlpha = 1;
        ctx.fillStyle = model.color;
        ctx.fillText(text, left + 5, y + 4);
      }
    });
  }
}

// ---------------------------------------------------------------- the chart

const chartEl = $('chart');
let chart = null;
let candleSeries = null;
let volumeSeries = null;
const overlay = new ForecastOverlay();

function theme() {
  return {
    card: cssVar('--card'),
    border: cssVar('--border'),
    grid: cssVar('--grid'),
    text: cssVar('--text'),
    muted: cssVar('--muted'),
    faint: cssVar('--faint'),
    up: cssVar('--up'),
    down: cssVar('--down'),
    gap: cssVar('--gap'),
    gapEdge: cssVar('--gap-edge'),
    gapText: cssVar('--warn'),
    future: cssVar('--future'),
  };
}

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
      priceFormatter: (price) => fmtPrice(price),
      timeFormatter: (time) => fmtTime(time, { time: SECONDS[state.interval] < 86400 }),
    },
  };
}

function seriesColors() {
  const t = theme();
  return { upColor: t.up, downColor: t.down, wickUpColor: t.up, wickDownColor: t.down, borderVisible: false };
}

function createPriceChart() {
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

function applyTheme() {
  if (!chart) return;
  assignColors();
  chart.applyOptions(chartOptions());
  candleSeries.applyOptions(seriesColors());
  renderAll();
}

// Bars sit on a regular grid of the interval from the first candle: bar i opens at t0 + i*iv.
function gridOf(series) {
  return { t0: series.candles.length ? series.candles[0].time : 0, iv: SECONDS[series.interval] };
}
// An instant maps to the left edge of the bar containing it (bars are centred on integers).
const instantLogical = (grid, t) => (t - grid.t0) / grid.iv - 0.5;

function chartData(series, futureUntil) {
  const { t0, iv } = gridOf(series);
  const t = theme();
  const bars = [];
  const volumes = [];
  let expected = t0;
  for (const c of series.candles) {
    for (; expected < c.time; expected += iv) bars.push({ time: expected }); // a gap: keep the time axis true
    const up = c.close >= c.open;
    const bar = { time: c.time, open: c.open, high: c.high, low: c.low, close: c.close };
    if (c.forming) Object.assign(bar, { color: alpha(hexOf(up ? t.up : t.down), 0.45), wickColor: alpha(hexOf(up ? t.up : t.down), 0.6) });
    bars.push(bar);
    volumes.push({ time: c.time, value: c.volume, color: alpha(hexOf(up ? t.up : t.down), 0.28) });
    expected = c.time + iv;
  }
  if (series.candles.length) for (; expected <= futureUntil; expected += iv) bars.push({ time: expected });
  return { bars, volumes };
}

function hexOf(color) {
  if (/^#[0-9a-f]{6}$/i.test(color)) return color;
  const m = color.match(/\d+/g);
  return m ? `#${m.slice(0, 3).map((v) => Number(v).toString(16).padStart(2, '0')).join('')}` : '#888888';
}

// ---------------------------------------------------------------- loading

let seq = 0;
const pending = new Set();

function reload(...scopes) {
  for (const scope of scopes) pending.add(scope);
  writeUrl();
  const token = ++seq;
  run(token, new Set(pending));
}

async function run(token, scopes) {
  document.body.dataset.state = 'loading';
  chartEl.dataset.state = 'loading';
  const current = () => token === seq;
  try {
    if (scopes.has('coin')) {
      const symbol = state.symbol;
      const coverage = await api(`/api/v1/cryptocurrencies/${enc(symbol)}/coverage`);
      const [latest, price] = await Promise.all([
        api(`/api/v1/predictions/latest?symbol=${enc(symbol)}`).catch((error) => ({ error })),
        coverage.count ? api(`/api/v1/cryptocurrencies/${enc(symbol)}/price`).catch(() => null) : null,
      ]);
      if (!current()) return;
      state.coverage = coverage;
      state.latest = latest;
      state.price = price;
      state.decimals = decimalsFor(price?.price);
      syncTimeframes();
      syncHorizons();
      writeUrl();
    }
    const wantCandles = scopes.has('coin') || scopes.has('candles');
    const wantBoard = scopes.has('coin') || scopes.has('board');
    const [series, board] = await Promise.all([
      wantCandles ? fetchCandles() : state.series,
      wantBoard ? fetchBoard() : state.board,
    ]);
    if (!current()) return;
    state.series = series;
    state.board = board;
    pending.clear();
    renderAll({ fit: wantCandles || scopes.has('horizon') });
    document.body.dataset.state = 'ready';
  } catch (error) {
    if (!current()) return;
    pending.clear();
    console.warn('dashboard: could not load', error);
    showChartMessage(`Could not load ${state.symbol}: ${error.message}`);
    chartEl.dataset.state = 'error';
    document.body.dataset.state = 'error';
  }
}

function candleQuery() {
  const params = new URLSearchParams({ interval: state.interval });
  if (state.from) params.set('start', `${state.from}T00:00:00Z`);
  if (state.to) {
    const end = new Date(`${state.to}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1); // the "to" day is included; the API's end is exclusive
    params.set('end', end.toISOString().replace('.000Z', 'Z'));
  }
  params.set('limit', String(state.from ? RANGE_PAGE : DEFAULT_LIMIT[state.interval]));
  return params.toString();
}

async function fetchCandles() {
  const interval = state.interval;
  const query = candleQuery();
  if (!state.coverage || !state.coverage.count) return { candles: [], interval, query, complete: true };
  const path = `/api/v1/cryptocurrencies/${enc(state.symbol)}/ohlcv?`;
  const candles = [];
  let cursor = null;
  let pages = 0;
  do {
    const page = await api(path + query + (cursor ? `&cursor=${enc(cursor)}` : ''));
    for (const c of page.candles) candles.push({ ...c, time: epoch(c.timestamp) });
    cursor = page.next_cursor;
    pages += 1;
  } while (cursor && pages < MAX_PAGES);
  return { candles, interval, query, complete: !cursor };
}

async function fetchBoard() {
  const { symbol, horizon } = state;
  if (!horizon) return { missing: true, symbol, horizon };
  try {
    const data = await api(`/api/v1/leaderboard?symbol=${enc(symbol)}&horizon=${enc(horizon)}`);
    return { data, symbol, horizon };
  } catch (error) {
    // 404 is the API's "no finished backtest for this coin and horizon yet".
    if (error.status === 404) return { missing: true, symbol, horizon, detail: error.message };
    return { error, symbol, horizon };
  }
}

// ---------------------------------------------------------------- controls

function allowedIntervals(base) {
  if (!base) return new Set(INTERVALS);
  return new Set(INTERVALS.filter((iv) => SECONDS[iv] >= SECONDS[base] && SECONDS[iv] % SECONDS[base] === 0));
}

function syncTimeframes() {
  const base = state.coverage?.base_timeframe ?? null;
  const allowed = allowedIntervals(base);
  for (const input of document.querySelectorAll('input[name="interval"]')) {
    const ok = allowed.has(input.value);
    input.disabled = !ok;
    input.nextElementSibling.title = ok ? `${input.value} candles` : `${state.symbol} stores ${INTERVAL_WORDS[base] ?? base} candles: finer intervals cannot be built from them`;
  }
  if (!allowed.has(state.interval)) state.interval = INTERVALS.find((iv) => allowed.has(iv)) ?? '1d';
  document.querySelector(`input[name="interval"][value="${state.interval}"]`).checked = true;
}

function supportedHorizons() {
  const base = state.coverage?.base_timeframe;
  const predicted = new Set((state.latest?.predictions ?? []).map((p) => p.horizon));
  return Object.keys(HORIZONS).filter((h) => predicted.has(h) || !base || HORIZONS[h] % SECONDS[base] === 0);
}

function syncHorizons() {
  const supported = new Set(supportedHorizons());
  for (const input of document.querySelectorAll('input[name="horizon"]')) {
    const ok = supported.has(input.value);
    input.disabled = !ok;
    input.nextElementSibling.title = ok ? `forecasts ${input.value} ahead` : `${state.symbol}'s candles are too coarse for a ${input.value} horizon`;
  }
  if (!supported.has(state.horizon)) state.horizon = supported.has('24h') ? '24h' : [...supported][0] ?? '24h';
  document.querySelector(`input[name="horizon"][value="${state.horizon}"]`).checked = true;
}

function bindControls() {
  $('controls').addEventListener('submit', (event) => event.preventDefault());
  $('coin').addEventListener('change', (event) => {
    state.symbol = event.target.value;
    state.focus = null;
    reload('coin');
  });
  for (const input of document.querySelectorAll('input[name="interval"]')) {
    input.addEventListener('change', () => {
      state.interval = input.value;
      reload('candles');
    });
  }
  for (const input of document.querySelectorAll('input[name="horizon"]')) {
    input.addEventListener('change', () => {
      state.horizon = input.value;
      state.focus = null;
      reload('board', 'horizon');
    });
  }
  for (const key of ['from', 'to']) {
    $(key).value = state[key];
    $(key).addEventListener('change', (event) => {
      state[key] = event.target.value;
      reload('candles');
    });
  }
  $('latest').addEventListener('click', () => {
    state.from = state.to = '';
    $('from').value = $('to').value = '';
    reload('candles');
  });
  darkQuery.addEventListener('change', applyTheme);
}

function setRange(fromSeconds, toSeconds) {
  state.from = fmtTime(fromSeconds, { time: false });
  state.to = fmtTime(toSeconds, { time: false });
  $('from').value = state.from;
  $('to').value = state.to;
  reload('candles');
}

// ---------------------------------------------------------------- rendering

function renderAll({ fit = false } = {}) {
  renderHeader();
  renderChart({ fit });
  renderCoverage();
  renderForecasts();
  renderLegend();
  renderBoard();
}

function coinOf(symbol) {
  return state.coins.find((c) => c.symbol === symbol);
}

function renderHeader() {
  const coin = coinOf(state.symbol);
  $('coin-symbol').textContent = state.symbol ?? '—';
  $('coin-name').textContent = coin ? coin.name : '';
  const price = state.price;
  $('quote-price').textContent = price ? `$${fmtPrice(price.price)}` : '—';
  $('quote-time').textContent = price ? `last close · ${fmtTime(epoch(price.timestamp))} UTC` : '';
  const candles = state.series?.candles ?? [];
  const change = $('quote-change');
  change.textContent = '';
  const last = candles[candles.length - 1];
  if (last && !state.to) {
    const span = Math.max(86400, SECONDS[state.series.interval]);
    const before = candles.find((c) => c.time === last.time - span);
    if (before) {
      const delta = last.close / before.close - 1;
      change.replaceChildren(fmtChange(delta), el('span', { class: 'muted small', text: ` ${span === 86400 ? '24h' : fmtDuration(span)}` }));
      change.className = `change ${delta >= 0 ? 'up' : 'down'}`;
    }
  }
}

function showChartMessage(text) {
  const message = $('chart-message');
  message.hidden = !text;
  message.textContent = text || '';
}

function showOhlc(bar) {
  const box = $('ohlc');
  const candles = state.series?.candles ?? [];
  const last = candles[candles.length - 1];
  const shown = bar ?? last;
  box.replaceChildren();
  if (!shown) return;
  const parts = [];
  const source = candles.find((c) => c.time === shown.time) ?? shown;
  const daily = SECONDS[state.interval] >= 86400;
  parts.push(
    el('span', {}, fmtTime(shown.time, { time: !daily }), ' UTC'),
    el('span', {}, 'O ', el('b', { text: fmtPrice(shown.open) })),
    el('span', {}, 'H ', el('b', { text: fmtPrice(shown.high) })),
    el('span', {}, 'L ', el('b', { text: fmtPrice(shown.low) })),
    el('span', {}, 'C ', el('b', { class: shown.close >= shown.open ? 'up' : 'down', text: fmtPrice(shown.close) })),
    el('span', {}, 'V ', el('b', { text: fmtCompact(source.volume) })),
  );
  if (source.forming) parts.push(el('span', { class: 'tag', title: 'its period has not ended in the stored data', text: 'forming' }));
  box.append(...parts);
}

// The newest forecasts (per model: one point per horizon) as the overlay draws them.
function forecastScene(series) {
  const grid = gridOf(series);
  const candles = series.candles;
  const t = theme();
  const scene = { origin: null, originPrice: null, horizon: state.horizon, models: [], gaps: [], theme: t };
  // Gaps in the stored candles that fall inside the loaded range.
  if (candles.length) {
    const first = candles[0].time;
    const end = candles[candles.length - 1].time + grid.iv;
    const base = SECONDS[state.coverage?.base_timeframe] ?? grid.iv;
    for (const gap of state.coverage?.gaps ?? []) {
      const a = epoch(gap.start);
      const b = epoch(gap.end) + base;
      if (b <= first || a >= end) continue;
      scene.gaps.push({ from: instantLogical(grid, a), to: instantLogical(grid, b), label: `gap · ${gap.missing} missing` });
    }
  }
  const predictions = state.latest?.predictions ?? [];
  if (!candles.length || !predictions.length) return scene;
  const lastClose = candles[candles.length - 1].time + grid.iv;
  const origin = Math.max(...predictions.map((p) => epoch(p.prediction_timestamp)));
  // Only when the chart reaches the forecasts' origin: an older range shows history only.
  if (origin < candles[0].time || origin > lastClose + grid.iv) return scene;
  const originBar = candles.find((c) => c.time + grid.iv >= origin && c.time < origin) ?? candles[candles.length - 1];
  scene.origin = instantLogical(grid, origin);
  scene.originPrice = originBar.close;
  const champion = state.latest.champion?.[state.horizon];
  const focus = state.focus ?? champion;
  const byModel = new Map();
  for (const p of predictions) {
    if (epoch(p.prediction_timestamp) !== origin) continue;
    if (!byModel.has(p.model_name)) byModel.set(p.model_name, []);
    byModel.get(p.model_name).push({
      horizon: p.horizon,
      logical: instantLogical(grid, epoch(p.target_timestamp)),
      target: epoch(p.target_timestamp),
      price: p.predicted_price,
      lower80: p.lower_80,
      upper80: p.upper_80,
      lower95: p.lower_95,
      upper95: p.upper_95,
    });
  }
  for (const [name, points] of byModel) {
    points.sort((a, b) => a.target - b.target);
    scene.models.push({ name, color: colorOf(name), visible: !state.hidden.has(name), focused: name === focus, points });
  }
  scene.models.sort((a, b) => modelOrder(a.name) - modelOrder(b.name));
  scene.futureUntil = Math.max(...scene.models.flatMap((m) => m.points.map((p) => p.target)));
  return scene;
}

function modelOrder(name) {
  const i = state.models.findIndex((m) => m.name === name);
  return i < 0 ? 999 : i;
}

function renderChart({ fit }) {
  const series = state.series;
  if (!series) return;
  const candles = series.candles;
  chartEl.dataset.symbol = state.symbol;
  chartEl.dataset.interval = series.interval;
  chartEl.dataset.candles = String(candles.length);
  chartEl.dataset.query = series.query;
  const scene = forecastScene(series);
  chartEl.dataset.forecastModels = String(scene.models.length);
  chartEl.dataset.gaps = String(scene.gaps.length);
  const grid = gridOf(series);
  const futureUntil = scene.futureUntil ? scene.futureUntil : 0;
  const { bars, volumes } = chartData(series, futureUntil);
  candleSeries.applyOptions({ priceFormat: { type: 'price', precision: state.decimals, minMove: 10 ** -state.decimals } });
  candleSeries.setData(bars);
  volumeSeries.setData(volumes);
  overlay.set(scene);
  showOhlc(null);
  const label = candles.length
    ? `${state.symbol} ${series.interval} candlestick chart: ${candles.length} candles from ${fmtTime(candles[0].time)} to ${fmtTime(candles[candles.length - 1].time)} UTC` +
      (scene.models.length ? `, with forecasts of ${scene.models.length} models` : '')
    : `${state.symbol}: no candles`;
  chartEl.setAttribute('aria-label', label);
  if (!state.coverage?.count) {
    showChartMessage(`No candles are stored for ${state.symbol} yet. Load some with: cryptopredict ingest-csv FILE --symbol ${state.symbol}`);
  } else if (!candles.length) {
    showChartMessage('No candles in this range. Pick other dates or press “Latest”.');
  } else {
    showChartMessage('');
  }
  if (fit && candles.length) frame(scene, grid, candles.length);
  chartEl.dataset.state = 'ready';
}

// Show the newest stretch and the chosen horizon ahead of it; a chosen range is shown whole.
function frame(scene, grid, count) {
  const lastIndex = (state.series.candles[count - 1].time - grid.t0) / grid.iv;
  const point = scene.models.flatMap((m) => m.points).find((p) => p.horizon === state.horizon);
  const lead = scene.origin !== null && point ? Math.max(1, point.logical - lastIndex) : 0;
  // Room right of the target for the whiskers, in pixels turned into bars.
  const room = scene.models.length ? 36 + scene.models.length * WHISKER_STEP : 24;
  const width = Math.max(chart.timeScale().width(), room + 200);
  const history = state.from || state.to ? lastIndex + 1 : Math.min(lastIndex + 1, Math.max(90, Math.round(lead * 4)));
  const margin = (room * (history + lead)) / (width - room);
  chart.timeScale().setVisibleLogicalRange({ from: lastIndex - history, to: lastIndex + lead + margin });
}

function renderLegend() {
  const box = $('model-legend');
  box.replaceChildren();
  const scene = overlay.scene;
  if (!scene || !scene.models.length) {
    const reason = !state.latest?.predictions?.length
      ? `No forecasts for ${state.symbol} yet: cryptopredict predict ${state.symbol}`
      : 'Forecasts are drawn when the range reaches the newest candle.';
    box.append(el('span', { class: 'legend-title', text: reason }));
    return;
  }
  const champion = state.latest.champion?.[state.horizon];
  box.append(el('span', { class: 'legend-title', text: 'Models' }));
  for (const model of scene.models) {
    box.append(
      el(
        'button',
        {
          type: 'button',
          class: `chip${model.focused ? ' focused' : ''}`,
          'aria-pressed': String(model.visible),
          'data-model': model.name,
          title: model.visible ? `Hide ${model.name} on the chart` : `Show ${model.name} on the chart`,
          style: { '--c': model.color },
          onclick: () => toggleModel(model.name),
        },
        el('span', { class: 'swatch', 'aria-hidden': 'true' }),
        model.name,
        model.name === champion ? el('span', { class: 'star', title: 'champion', text: '★' }) : null,
      ),
    );
  }
  box.append(el('span', { class: 'legend-hint', text: 'line: median · bar: 80% · whisker: 95% · cone: champion (hover a forecast row for another)' }));
}

function toggleModel(name) {
  if (state.hidden.has(name)) state.hidden.delete(name);
  else state.hidden.add(name);
  renderChart({ fit: false });
  renderLegend();
  renderForecasts();
}

function focusModel(name) {
  if (state.focus === name) return;
  state.focus = name;
  if (state.series) overlay.set(forecastScene(state.series));
  for (const chip of document.querySelectorAll('.chip')) chip.classList.toggle('focused', chip.dataset.model === (name ?? state.latest?.champion?.[state.horizon]));
}

function renderCoverage() {
  const cov = state.coverage;
  const box = $('coverage');
  const text = $('coverage-text');
  const bar = $('coverage-bar');
  const list = $('gap-list');
  bar.replaceChildren();
  list.replaceChildren();
  text.replaceChildren();
  if (!cov || !cov.count) {
    box.dataset.gaps = '0';
    text.textContent = 'No stored candles.';
    return;
  }
  const first = epoch(cov.first);
  const last = epoch(cov.last);
  const base = cov.base_timeframe;
  const span = Math.max(last - first, 1);
  box.dataset.gaps = String(cov.gaps.length);
  box.dataset.missing = String(cov.missing);
  text.append(
    'Stored ',
    el('b', { text: `${fmtTime(first, { time: false })} → ${fmtTime(last, { time: false })}` }),
    ` · ${fmtNumber(cov.count, 0)} ${INTERVAL_WORDS[base] ?? base} candles · `,
    cov.gaps.length
      ? el('b', { class: 'gap-count', text: `${fmtNumber(cov.missing, 0)} missing in ${cov.gaps.length} gap${cov.gaps.length > 1 ? 's' : ''}` })
      : el('b', { text: 'no gaps' }),
  );
  const candles = state.series?.candles ?? [];
  if (candles.length) {
    const a = candles[0].time;
    const b = candles[candles.length - 1].time;
    bar.append(el('div', { class: 'view', title: 'the range on the chart', style: { left: `${((a - first) / span) * 100}%`, width: `${(Math.max(b - a, 0) / span) * 100}%` } }));
  }
  const baseSeconds = SECONDS[base] ?? 3600;
  for (const gap of cov.gaps) {
    const a = epoch(gap.start);
    const b = epoch(gap.end) + baseSeconds;
    const label = `${fmtTime(a, { time: baseSeconds < 86400 })} → ${fmtTime(b - baseSeconds, { time: baseSeconds < 86400 })}: ${gap.missing} missing`;
    bar.append(el('div', { class: 'gap', title: label, style: { left: `${((a - first) / span) * 100}%`, width: `${((b - a) / span) * 100}%` } }));
  }
  for (const gap of cov.gaps.slice(0, 6)) {
    const a = epoch(gap.start);
    const b = epoch(gap.end);
    const margin = Math.max(baseSeconds * 20, 86400 * 3);
    list.append(
      el('button', { type: 'button', title: 'Show this gap on the chart', onclick: () => setRange(a - margin, b + margin) },
        `Gap ${fmtTime(a, { time: baseSeconds < 86400 })} · ${gap.missing} missing`),
    );
  }
  if (cov.gaps.length > 6) list.append(el('span', { class: 'muted small', text: `and ${cov.gaps.length - 6} more` }));
}

function renderForecasts() {
  const body = $('forecasts-body');
  const card = $('forecasts');
  const sub = $('forecasts-sub');
  $('forecasts-title').textContent = `Latest forecasts · ${state.horizon ?? ''}`;
  body.replaceChildren();
  const latest = state.latest;
  if (!latest || latest.error) {
    card.dataset.state = 'error';
    sub.textContent = '';
    body.append(el('p', { class: 'error', text: `Could not load forecasts: ${latest?.error?.message ?? 'unknown error'}` }));
    return;
  }
  const rows = latest.predictions.filter((p) => p.horizon === state.horizon);
  rows.sort((a, b) => modelOrder(a.model_name) - modelOrder(b.model_name));
  if (!rows.length) {
    card.dataset.state = 'empty';
    sub.textContent = '';
    body.append(
      el('div', { class: 'empty' },
        el('p', {}, el('strong', { text: `No ${state.horizon} forecasts for ${state.symbol} yet.` }), ' Make some:'),
        el('pre', { text: `cryptopredict predict ${state.symbol} -H ${state.horizon}` })),
    );
    return;
  }
  card.dataset.state = 'ready';
  const champion = latest.champion?.[state.horizon];
  const origin = epoch(rows[0].prediction_timestamp);
  const target = epoch(rows[0].target_timestamp);
  sub.textContent = `From the close at ${fmtTime(origin)} to ${fmtTime(target)} UTC, per model.`;
  const lastClose = priceAt(origin);
  const tolerances = [...new Set(rows.map((p) => p.confidence_tolerance).filter((v) => v !== null))];
  const tolerance = tolerances.length === 1 ? `±${fmtNumber(tolerances[0] * 100, tolerances[0] < 0.01 ? 1 : 0)}%` : '± tolerance';
  const table = el('table', { class: 'forecast-table' },
    el('caption', { class: 'sr-only', text: `${state.symbol} forecasts ${state.horizon} ahead, per model` }),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col', text: 'Model' }),
      el('th', { scope: 'col', text: 'Forecast' }),
      el('th', { scope: 'col' }, el('abbr', { title: 'Prediction intervals: the price should land inside the 80% band 4 times out of 5, inside the 95% band 19 times out of 20', text: 'Bands' })),
      el('th', { scope: 'col' }, el('abbr', { title: `The model’s probability that the price lands within ${tolerance} of its forecast`, text: 'Conf.' }), el('span', { class: 'th-sub', text: tolerance })),
    )),
    el('tbody', {}, rows.map((p) => {
      const change = lastClose ? p.predicted_price / lastClose - 1 : null;
      const hidden = state.hidden.has(p.model_name);
      return el('tr', {
        class: [p.model_name === champion ? 'champion' : '', hidden ? 'hidden-model' : ''].join(' ').trim() || null,
        'data-model': p.model_name,
        'data-champion': p.model_name === champion ? 'true' : null,
        onmouseenter: () => focusModel(p.model_name),
        onmouseleave: () => focusModel(null),
      },
      el('th', { scope: 'row' },
        el('span', { class: 'model-cell', style: { '--c': colorOf(p.model_name) } },
          el('span', { class: 'swatch', 'aria-hidden': 'true' }),
          el('span', {}, p.model_name,
            p.model_name === champion ? el('span', { class: 'fc-sub champion-note', title: 'the model the latest backtest recommends for this horizon', text: '★ champion' }) : null))),
      el('td', {},
        el('span', { class: 'fc-price num', text: fmtPrice(p.predicted_price) }),
        el('span', { class: `fc-sub num ${change > 0 ? 'up' : change < 0 ? 'down' : ''}`, text: fmtChange(change) })),
      el('td', { class: 'band num' },
        el('div', {}, el('span', { class: 'lbl', text: '80%' }), el('b', { text: fmtBand(p.lower_80, p.upper_80) })),
        el('div', {}, el('span', { class: 'lbl', text: '95%' }), fmtBand(p.lower_95, p.upper_95))),
      el('td', { class: 'num', title: p.confidence_tolerance !== null ? `${fmtPct(p.confidence_score, 0)} chance of landing within ±${fmtNumber(p.confidence_tolerance * 100, 1)}%` : null },
        el('span', { class: 'conf', text: fmtPct(p.confidence_score, 0) })),
      );
    })),
  );
  body.append(el('div', { class: 'table-scroll' }, table));
}

function priceAt(origin) {
  const candles = state.series?.candles ?? [];
  const iv = SECONDS[state.series?.interval] ?? 0;
  const bar = candles.find((c) => c.time < origin && c.time + iv >= origin);
  if (bar) return bar.close;
  return state.price && epoch(state.price.timestamp) < origin ? state.price.price : null;
}

function renderBoard() {
  const board = state.board;
  const card = $('leaderboard');
  const body = $('leaderboard-body');
  const sub = $('leaderboard-sub');
  const cal = $('calibration-body');
  const calCard = $('calibration');
  body.replaceChildren();
  cal.replaceChildren();
  $('leaderboard-title').textContent = `Leaderboard · ${state.symbol} · ${state.horizon}`;
  if (!board || board.error) {
    card.dataset.state = calCard.dataset.state = 'error';
    sub.textContent = '';
    const message = `Could not load the leaderboard: ${board?.error?.message ?? 'unknown error'}`;
    body.append(el('p', { class: 'error', text: message }));
    cal.append(el('p', { class: 'error', text: message }));
    return;
  }
  if (board.missing) {
    card.dataset.state = calCard.dataset.state = 'empty';
    sub.textContent = '';
    const command = `cryptopredict backtest ${board.symbol} -H ${board.horizon} --windows 30`;
    const curl = `curl -X POST ${location.origin}/api/v1/backtests \\\n  -H 'Content-Type: application/json' \\\n  -d '{"symbol": "${board.symbol}", "horizon": "${board.horizon}", "windows": 30}'`;
    body.append(
      el('div', { class: 'empty', id: 'leaderboard-empty' },
        el('p', {}, el('strong', { text: `No finished backtest for ${board.symbol} at ${board.horizon} yet.` }),
          ' A walk-forward backtest scores every model against the random walk on past data; run one from the command line:'),
        el('pre', { text: command }),
        el('p', { text: 'or through the API (it runs in the background; this page shows it once it has finished):' }),
        el('pre', { text: curl })),
    );
    cal.append(el('div', { class: 'empty' }, el('p', { text: 'Calibration comes with the backtest: see the leaderboard.' })));
    return;
  }
  card.dataset.state = calCard.dataset.state = 'ready';
  const data = board.data;
  sub.textContent = `Walk-forward backtest ${data.backtest_id.slice(0, 8)} · ${data.windows} windows, origins ${fmtTime(epoch(data.first_origin), { time: false })} → ${fmtTime(epoch(data.last_origin), { time: false })}${data.finished_at ? ` · finished ${fmtTime(epoch(data.finished_at))} UTC` : ''}`;
  body.append(el('div', { class: 'table-scroll' }, leaderboardTable(data)));
  cal.append(calibrationPlot(data));
}

function th(text, title) {
  return el('th', { scope: 'col' }, title ? el('abbr', { title, text }) : text);
}

function leaderboardTable(data) {
  const relValues = data.rows.map((r) => r.relative_mae).filter((v) => v !== null);
  const spread = Math.max(0.05, ...relValues.map((v) => Math.abs(v - 1)));
  return el('table', { class: 'leaderboard-table' },
    el('caption', { class: 'sr-only', text: `Models ranked by MAE relative to the random walk, ${data.symbol} ${data.horizon}` }),
    el('thead', {}, el('tr', {},
      th('#', 'Rank by relative MAE'),
      el('th', { scope: 'col', class: 'left', text: 'Model' }),
      th('Rel. MAE', 'Mean absolute error divided by the random walk’s on the same windows: below 1 beats it'),
      th('MAE', 'Mean absolute error, USD'),
      th('MASE', 'MAE scaled by the naive h-step change over a trailing window'),
      th('Direction', 'Share of windows where the forecast got the direction right, vs the share of windows where the price rose (the bar to clear)'),
      th('Cov. 80%', 'Share of actual prices inside the 80% band (ideal: 80%)'),
      th('Cov. 95%', 'Share of actual prices inside the 95% band (ideal: 95%)'),
      th('DM', 'Diebold–Mariano statistic against the random walk: below 0 is better'),
      th('DM p', 'Diebold–Mariano p-value: below 0.05 is a significant difference'),
    )),
    el('tbody', {}, data.rows.map((row) => {
      const champion = row.model === data.champion;
      const baseline = row.model === state.baseline;
      const rel = row.relative_mae;
      // Coloured as shown: a ratio that rounds to 1.000 is a tie with the random walk.
      const tie = rel === null || baseline || Math.abs(rel - 1) < 0.0005;
      const relClass = tie ? '' : rel < 1 ? 'better' : 'worse';
      const barWidth = rel === null ? 0 : Math.min(Math.abs(rel - 1) / spread, 1) * 50;
      return el('tr', { class: champion ? 'champion' : null, 'data-model': row.model, 'data-champion': champion ? 'true' : null },
        el('td', { class: 'num', text: String(row.rank) }),
        el('th', { scope: 'row' },
          el('span', { class: 'model-cell', style: { '--c': colorOf(row.model) } },
            el('span', { class: 'swatch', 'aria-hidden': 'true' }),
            el('span', { text: row.model }),
            champion ? el('span', { class: 'badge', title: 'recommended: the random walk unless a model beats it significantly', text: '★ champion' }) : null,
            baseline ? el('span', { class: 'baseline-note', title: 'every score is relative to the random walk', text: 'baseline' }) : null,
            row.fit_failures ? el('span', { class: 'baseline-note', title: 'windows where the model failed to fit', text: `${row.fit_failures} fit failures` }) : null)),
        el('td', { class: 'num' },
          el('span', { class: 'rel' },
            el('span', { class: 'rel-bar', 'aria-hidden': 'true' },
              el('span', { style: { left: rel !== null && rel < 1 ? `${50 - barWidth}%` : '50%', width: `${barWidth}%`, background: rel !== null && rel < 1 ? 'var(--up)' : 'var(--down)' } })),
            el('span', { class: `rel-value ${relClass}`, text: fmtNumber(rel, 3) }))),
        el('td', { class: 'num', text: fmtPrice(row.mae) }),
        el('td', { class: 'num', text: fmtNumber(row.mase, 3) }),
        el('td', { class: 'num' }, fmtPct(row.directional_accuracy, 0), el('span', { class: 'muted small', text: ` vs ${fmtPct(row.up_share, 0)}` })),
        el('td', { class: `num ${offNominal(row.coverage_80, 0.8) ? 'off-nominal' : ''}`, text: fmtPct(row.coverage_80, 0) }),
        el('td', { class: `num ${offNominal(row.coverage_95, 0.95) ? 'off-nominal' : ''}`, text: fmtPct(row.coverage_95, 0) }),
        el('td', { class: 'num', text: row.dm_statistic === null ? '—' : fmtNumber(row.dm_statistic, 2) }),
        el('td', { class: `num ${row.dm_p_value !== null && row.dm_p_value < 0.05 ? 'signif' : ''}`, text: fmtNumber(row.dm_p_value, 3) }),
      );
    })),
  );
}

const offNominal = (value, nominal) => value !== null && Math.abs(value - nominal) > 0.1;

function calibrationPlot(data) {
  const W = 320;
  const H = 230;
  const m = { left: 40, right: 12, top: 10, bottom: 36 };
  const sx = (v) => m.left + v * (W - m.left - m.right);
  const sy = (v) => H - m.bottom - v * (H - m.top - m.bottom);
  const models = Object.keys(data.calibration).sort((a, b) => modelOrder(a) - modelOrder(b));
  const maxCount = Math.max(1, ...models.flatMap((name) => data.calibration[name].map((b) => b.count)));
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'calibration-plot', role: 'img', id: 'calibration-plot', 'aria-labelledby': 'calibration-plot-title' });
  plot.append(svg('title', { id: 'calibration-plot-title' }, `Calibration of ${data.symbol} ${data.horizon} confidence scores: observed hit rate against stated confidence, per model`));
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    plot.append(
      svg('line', { class: 'gridline', x1: sx(0), x2: sx(1), y1: sy(v), y2: sy(v) }),
      svg('line', { class: 'gridline', x1: sx(v), x2: sx(v), y1: sy(0), y2: sy(1) }),
      svg('text', { class: 'tick', x: sx(v), y: H - m.bottom + 14, 'text-anchor': 'middle' }, `${v * 100}%`),
      svg('text', { class: 'tick', x: m.left - 6, y: sy(v) + 3, 'text-anchor': 'end' }, `${v * 100}%`),
    );
  }
  plot.append(
    svg('line', { class: 'axis', x1: sx(0), x2: sx(1), y1: sy(0), y2: sy(0) }),
    svg('line', { class: 'axis', x1: sx(0), x2: sx(0), y1: sy(0), y2: sy(1) }),
    svg('line', { class: 'ideal', x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1) }),
    svg('text', { class: 'label', x: sx(0.5), y: H - 6, 'text-anchor': 'middle' }, 'stated confidence'),
    svg('text', { class: 'label', x: 11, y: sy(0.5), 'text-anchor': 'middle', transform: `rotate(-90 11 ${sy(0.5)})` }, 'observed hit rate'),
    svg('text', { class: 'tick', x: sx(0.1), y: sy(0.1) - 5, transform: `rotate(${(-Math.atan((H - m.top - m.bottom) / (W - m.left - m.right)) * 180) / Math.PI} ${sx(0.1)} ${sy(0.1) - 5})` }, 'perfectly calibrated'),
  );
  let points = 0;
  const taken = [];
  for (const name of models) {
    const color = colorOf(name);
    const buckets = data.calibration[name].filter((b) => b.count > 0 && b.mean_confidence !== null && b.hit_rate !== null);
    if (buckets.length > 1) {
      plot.append(svg('polyline', { points: buckets.map((b) => `${sx(b.mean_confidence)},${sy(b.hit_rate)}`).join(' '), fill: 'none', stroke: color, 'stroke-width': 1.5, 'stroke-opacity': 0.8 }));
    }
    for (const b of buckets) {
      points += 1;
      // Models often agree: nudge a point that would hide another one (the tooltip is exact).
      let cx = sx(b.mean_confidence);
      const cy = sy(b.hit_rate);
      while (taken.some(([x, y]) => Math.abs(x - cx) < 4 && Math.abs(y - cy) < 4)) cx += 7;
      taken.push([cx, cy]);
      plot.append(
        svg('circle', { cx, cy, r: 3 + 4 * Math.sqrt(b.count / maxCount), fill: color, 'fill-opacity': 0.55, stroke: color, 'stroke-width': 1.5 },
          svg('title', {}, `${name}: ${b.count} forecasts stated ${fmtPct(b.mean_confidence, 0)} on average, ${fmtPct(b.hit_rate, 0)} landed within the tolerance`)),
      );
    }
  }
  plot.dataset.points = String(points);
  const legend = el('div', { class: 'calibration-legend' }, models.map((name) => el('span', { style: { '--c': colorOf(name) }, text: name })));
  const note = points ? null : el('p', { class: 'muted small', text: 'No scored confidence in the second half of the windows yet.' });
  return el('div', {}, plot, legend, note);
}

// ---------------------------------------------------------------- health

async function pollHealth() {
  const badge = $('health');
  const label = $('health-label');
  const details = $('health-details');
  let body = null;
  try {
    const response = await fetch('/health/detailed', { headers: { Accept: 'application/json' } });
    body = await response.json(); // 503 still carries the report
  } catch {
    body = null;
  }
  details.replaceChildren();
  if (!body || !body.status) {
    badge.dataset.status = 'unreachable';
    label.textContent = 'API unreachable';
  } else {
    badge.dataset.status = body.status;
    const db = body.database;
    label.textContent = `${body.status[0].toUpperCase()}${body.status.slice(1)}${db?.latency_ms !== null && db?.latency_ms !== undefined ? ` · db ${fmtNumber(db.latency_ms, 1)} ms` : ''}`;
    const rows = [
      ['Service', `${body.service.name} ${body.service.version}`],
      ['Environment', body.service.environment],
      ['Database', `${db.status}${db.latency_ms !== null ? ` · ${fmtNumber(db.latency_ms, 1)} ms` : ''}`],
      ['Cache', `${body.cache.status}${body.cache.used_memory_mb !== null ? ` · ${fmtNumber(body.cache.used_memory_mb, 1)} MB` : ''}`],
      ['Checked', `${fmtTime(epoch(body.timestamp))}:${pad(new Date(body.timestamp).getUTCSeconds())} UTC`],
    ];
    for (const [k, v] of rows) details.append(el('dt', { text: k }), el('dd', { text: v }));
  }
  setTimeout(pollHealth, HEALTH_EVERY_MS);
}

// ---------------------------------------------------------------- start

async function init() {
  readUrl();
  bindControls();
  pollHealth();
  if (!LW) {
    showChartMessage('The chart library did not load.');
    document.body.dataset.state = 'error';
    return;
  }
  createPriceChart();
  let coins;
  try {
    const [page, models] = await Promise.all([api('/api/v1/cryptocurrencies?limit=500'), api('/api/v1/models').catch(() => [])]);
    coins = page.items;
    state.models = models;
  } catch (error) {
    showChartMessage(`Could not reach the API: ${error.message}`);
    document.body.dataset.state = 'error';
    return;
  }
  assignColors();
  state.coins = coins;
  const select = $('coin');
  select.replaceChildren(...coins.map((c) => el('option', { value: c.symbol, text: `${c.symbol} · ${c.name}${c.is_active ? '' : ' (inactive)'}` })));
  select.disabled = !coins.length;
  if (!coins.length) {
    showChartMessage('No coins yet. Load the demo data with: cryptopredict seed');
    document.body.dataset.state = 'ready';
    return;
  }
  if (!coinOf(state.symbol)) state.symbol = coins[0].symbol;
  select.value = state.symbol;
  reload('coin');
}

init();
