// What the chart shows besides candles, worked out from the state: the regular time grid the
// bars sit on, the gaps in the stored data, and the newest forecast of each model.

import { colorOf } from './colors.js';
import { epoch } from './format.js';

// Bars sit on a regular grid of the interval from the first candle: bar i opens at t0 + i*iv.
export function gridOf(series, vocabulary) {
  return { t0: series.candles.length ? series.candles[0].time : 0, iv: vocabulary.secondsOf(series.interval) };
}

// An instant maps to the left edge of the bar containing it (bars are centred on integers).
const instantLogical = (grid, t) => (t - grid.t0) / grid.iv - 0.5;

// The scene ForecastOverlay draws: per model, one point per horizon of its newest forecast.
export function forecastScene(state, theme) {
  const { series } = state;
  const grid = gridOf(series, state.vocabulary);
  const scene = { origin: null, originPrice: null, horizon: state.horizon, decimals: state.decimals, models: [], gaps: gapsShown(state, grid), theme };
  const candles = series.candles;
  const predictions = state.latest?.predictions ?? [];
  if (!candles.length || !predictions.length) return scene;
  const last = candles[candles.length - 1];
  const origin = Math.max(...predictions.map((p) => epoch(p.prediction_timestamp)));
  // Only when the chart reaches the forecasts' origin: an older range shows history only.
  if (origin < candles[0].time || origin > last.time + 2 * grid.iv) return scene;
  const originBar = candles.find((c) => c.time + grid.iv >= origin && c.time < origin) ?? last;
  scene.origin = instantLogical(grid, origin);
  scene.originPrice = originBar.close;
  scene.models = modelsShown(state, grid, predictions.filter((p) => epoch(p.prediction_timestamp) === origin));
  scene.futureUntil = Math.max(...scene.models.flatMap((m) => m.points.map((p) => p.target)));
  return scene;
}

// Gaps in the stored candles that fall inside the loaded range.
function gapsShown({ series, coverage, vocabulary }, grid) {
  const candles = series.candles;
  if (!candles.length) return [];
  const first = candles[0].time;
  const end = candles[candles.length - 1].time + grid.iv;
  const base = vocabulary.secondsOf(coverage?.base_timeframe) ?? grid.iv;
  return (coverage?.gaps ?? [])
    .map((gap) => ({ a: epoch(gap.start), b: epoch(gap.end) + base, missing: gap.missing }))
    .filter(({ a, b }) => b > first && a < end)
    .map(({ a, b, missing }) => ({ from: instantLogical(grid, a), to: instantLogical(grid, b), label: `gap · ${missing} missing` }));
}

function modelsShown(state, grid, predictions) {
  const focus = state.focus ?? state.latest.champion?.[state.horizon];
  const byModel = new Map();
  for (const p of predictions) {
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
  const models = [...byModel].map(([name, points]) => ({
    name,
    color: colorOf(name),
    visible: !state.hidden.has(name),
    focused: name === focus,
    points: points.sort((a, b) => a.target - b.target),
  }));
  return state.vocabulary.inModelOrder(models, (model) => model.name);
}
