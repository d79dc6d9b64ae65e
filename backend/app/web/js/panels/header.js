// The chart's heading: the coin, its last close, and the change over the last day.

import { $, el } from '../dom.js';
import { epoch, fmtChange, fmtDuration, fmtNumber, fmtTime } from '../format.js';
import { redraws } from '../state.js';

const DAY = 86400;

export function showHeader(state, event) {
  if (!redraws(event)) return;
  const coin = state.coins.find((c) => c.symbol === state.symbol);
  $('coin-symbol').textContent = state.symbol ?? '—';
  $('coin-name').textContent = coin ? coin.name : '';
  const price = state.price;
  $('quote-price').textContent = price ? `$${fmtNumber(price.price, state.decimals)}` : '—';
  $('quote-time').textContent = price ? `last close · ${fmtTime(epoch(price.timestamp))} UTC` : '';
  showChange(state);
}

// Over a day, or one candle when candles are longer; a chosen range has no "now" to compare.
function showChange({ series, to, vocabulary }) {
  const change = $('quote-change');
  change.textContent = '';
  const candles = series?.candles ?? [];
  const last = candles[candles.length - 1];
  if (!last || to) return;
  const span = Math.max(DAY, vocabulary.secondsOf(series.interval));
  const before = candles.find((c) => c.time === last.time - span);
  if (!before) return;
  const delta = last.close / before.close - 1;
  change.replaceChildren(fmtChange(delta), el('span', { class: 'muted small', text: ` ${span === DAY ? '24h' : fmtDuration(span)}` }));
  change.className = `change ${delta >= 0 ? 'up' : 'down'}`;
}
