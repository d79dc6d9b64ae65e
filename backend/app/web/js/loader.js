// Loading: what the choice needs from the API, committed to the state in one update so every
// panel draws the same load. A newer load supersedes one still in flight and inherits its
// scopes, so nothing the older one was asked for is skipped.

import { api, enc } from './api.js';
import { setChartState, showChartMessage } from './chart.js';
import { decimalsFor, epoch } from './format.js';
import { getState, update } from './state.js';

const MAX_PAGES = 8; // of a range: the chart draws at most this many pages of candles

let seq = 0;
const pending = new Set();

export function setPageState(name) {
  document.body.dataset.state = name;
}

// scopes: 'coin' (everything), 'candles', 'board' and 'horizon' (the chart is framed again).
export function reload(...scopes) {
  for (const scope of scopes) pending.add(scope);
  const token = ++seq;
  run(token, new Set(pending));
}

async function run(token, scopes) {
  setPageState('loading');
  setChartState('loading');
  const current = () => token === seq;
  try {
    if (scopes.has('coin')) {
      const coin = await loadCoin(getState().symbol);
      if (!current()) return;
      update(fitChoice(coin, getState()));
    }
    const wantCandles = scopes.has('coin') || scopes.has('candles');
    const wantBoard = scopes.has('coin') || scopes.has('board');
    const state = getState();
    const [series, board] = await Promise.all([wantCandles ? fetchCandles(state) : state.series, wantBoard ? fetchBoard(state) : state.board]);
    if (!current()) return;
    pending.clear();
    update({ series, board }, { refit: wantCandles || scopes.has('horizon') });
    setPageState('ready');
  } catch (error) {
    if (!current()) return;
    pending.clear();
    console.warn('dashboard: could not load', error);
    showChartMessage(`Could not load ${getState().symbol}: ${error.message}`);
    setChartState('error');
    setPageState('error');
  }
}

async function loadCoin(symbol) {
  const coin = `/api/v1/cryptocurrencies/${enc(symbol)}`;
  const coverage = await api(`${coin}/coverage`);
  const [latest, price] = await Promise.all([
    api(`/api/v1/predictions/latest?symbol=${enc(symbol)}`).catch((error) => ({ error })),
    coverage.count ? api(`${coin}/price`).catch(() => null) : null,
  ]);
  return { coverage, latest, price, decimals: decimalsFor(price?.price) };
}

// The timeframe and horizon move to ones the coin's stored candles can serve.
function fitChoice(coin, { vocabulary, interval, horizon }) {
  const servable = vocabulary.servable(coin.coverage, coin.latest);
  return { ...coin, interval: vocabulary.chooseInterval(servable, interval), horizon: vocabulary.chooseHorizon(servable, horizon) };
}

function candleQuery({ vocabulary, interval, from, to }) {
  const params = new URLSearchParams({ interval });
  if (from) params.set('start', `${from}T00:00:00Z`);
  if (to) {
    const end = new Date(`${to}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1); // the "to" day is included; the API's end is exclusive
    params.set('end', end.toISOString().replace('.000Z', 'Z'));
  }
  params.set('limit', String(from ? vocabulary.rangeLimit : vocabulary.newestLimit(interval)));
  return params.toString();
}

async function fetchCandles(state) {
  const { interval, symbol, coverage } = state;
  const query = candleQuery(state);
  if (!coverage || !coverage.count) return { candles: [], interval, query, complete: true };
  const path = `/api/v1/cryptocurrencies/${enc(symbol)}/ohlcv?`;
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

async function fetchBoard({ symbol, horizon }) {
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
