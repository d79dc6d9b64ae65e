// The latest forecasts at the chosen horizon: a row per model with its price, change from the
// last close, bands and confidence. Hovering a row draws that model's cone on the chart.

import { focusModel } from '../actions.js';
import { colorOf } from '../colors.js';
import { $, el } from '../dom.js';
import { epoch, fmtBand, fmtChange, fmtNumber, fmtPct, fmtTime } from '../format.js';
import { redraws } from '../state.js';

const BANDS_MEANING = 'Prediction intervals: the price should land inside the 80% band 4 times out of 5, inside the 95% band 19 times out of 20';

export function showForecasts(state, event) {
  if (!redraws(event) && !event.changed.has('hidden')) return;
  const { latest, horizon, symbol } = state;
  const card = $('forecasts');
  const body = $('forecasts-body');
  $('forecasts-title').textContent = `Latest forecasts · ${horizon ?? ''}`;
  $('forecasts-sub').textContent = '';
  body.replaceChildren();
  if (!latest || latest.error) {
    card.dataset.state = 'error';
    body.append(el('p', { class: 'error', text: `Could not load forecasts: ${latest?.error?.message ?? 'unknown error'}` }));
    return;
  }
  const rows = state.vocabulary.inModelOrder(latest.predictions.filter((p) => p.horizon === horizon), (p) => p.model_name);
  if (!rows.length) {
    card.dataset.state = 'empty';
    body.append(
      el('div', { class: 'empty' },
        el('p', {}, el('strong', { text: `No ${horizon} forecasts for ${symbol} yet.` }), ' Make some:'),
        el('pre', { text: `cryptopredict predict ${symbol} -H ${horizon}` })),
    );
    return;
  }
  card.dataset.state = 'ready';
  const origin = epoch(rows[0].prediction_timestamp);
  $('forecasts-sub').textContent = `From the close at ${fmtTime(origin)} to ${fmtTime(epoch(rows[0].target_timestamp))} UTC, per model.`;
  body.append(el('div', { class: 'table-scroll' }, forecastTable(state, rows, priceAt(state, origin))));
}

// The close the forecasts start from: the bar that ends at their origin, or the last price.
function priceAt({ series, price, vocabulary }, origin) {
  const candles = series?.candles ?? [];
  const iv = vocabulary.secondsOf(series?.interval) ?? 0;
  const bar = candles.find((c) => c.time < origin && c.time + iv >= origin);
  if (bar) return bar.close;
  return price && epoch(price.timestamp) < origin ? price.price : null;
}

// "±2%" when every model states its confidence for the same tolerance.
function toleranceOf(rows) {
  const tolerances = [...new Set(rows.map((p) => p.confidence_tolerance).filter((v) => v !== null))];
  if (tolerances.length !== 1) return '± tolerance';
  return `±${fmtNumber(tolerances[0] * 100, tolerances[0] < 0.01 ? 1 : 0)}%`;
}

function forecastTable(state, rows, lastClose) {
  const tolerance = toleranceOf(rows);
  const champion = state.latest.champion?.[state.horizon];
  return el('table', { class: 'forecast-table' },
    el('caption', { class: 'sr-only', text: `${state.symbol} forecasts ${state.horizon} ahead, per model` }),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col', text: 'Model' }),
      el('th', { scope: 'col', text: 'Forecast' }),
      el('th', { scope: 'col' }, el('abbr', { title: BANDS_MEANING, text: 'Bands' })),
      el('th', { scope: 'col' }, el('abbr', { title: `The model’s probability that the price lands within ${tolerance} of its forecast`, text: 'Conf.' }), el('span', { class: 'th-sub', text: tolerance })),
    )),
    el('tbody', {}, rows.map((p) => forecastRow(p, { champion: p.model_name === champion, hidden: state.hidden.has(p.model_name), lastClose, decimals: state.decimals }))),
  );
}

function forecastRow(p, { champion, hidden, lastClose, decimals }) {
  const change = lastClose ? p.predicted_price / lastClose - 1 : null;
  const confidence = p.confidence_tolerance !== null ? `${fmtPct(p.confidence_score, 0)} chance of landing within ±${fmtNumber(p.confidence_tolerance * 100, 1)}%` : null;
  return el('tr', {
    class: [champion ? 'champion' : '', hidden ? 'hidden-model' : ''].join(' ').trim() || null,
    'data-model': p.model_name,
    'data-champion': champion ? 'true' : null,
    onmouseenter: () => focusModel(p.model_name),
    onmouseleave: () => focusModel(null),
  },
  el('th', { scope: 'row' },
    el('span', { class: 'model-cell', style: { '--c': colorOf(p.model_name) } },
      el('span', { class: 'swatch', 'aria-hidden': 'true' }),
      el('span', {}, p.model_name,
        champion ? el('span', { class: 'fc-sub champion-note', title: 'the model the latest backtest recommends for this horizon', text: '★ champion' }) : null))),
  el('td', {},
    el('span', { class: 'fc-price num', text: fmtNumber(p.predicted_price, decimals) }),
    el('span', { class: `fc-sub num ${change > 0 ? 'up' : change < 0 ? 'down' : ''}`, text: fmtChange(change) })),
  el('td', { class: 'band num' },
    el('div', {}, el('span', { class: 'lbl', text: '80%' }), el('b', { text: fmtBand(p.lower_80, p.upper_80, decimals) })),
    el('div', {}, el('span', { class: 'lbl', text: '95%' }), fmtBand(p.lower_95, p.upper_95, decimals))),
  el('td', { class: 'num', title: confidence },
    el('span', { class: 'conf', text: fmtPct(p.confidence_score, 0) })),
  );
}
