// What the page knows, in one place. It changes only through update(), which replaces the
// state and tells each subscriber which keys changed; panels redraw from what they are given.

let state = Object.freeze({
  vocabulary: null, // from GET /api/v1/meta, set once at start-up
  coins: [],
  // The choice, kept in the address: coin, timeframe, horizon and an optional date range.
  symbol: null,
  interval: null,
  horizon: null,
  from: '',
  to: '',
  hidden: new Set(), // models hidden on the chart; replaced, never changed in place
  focus: null, // model whose bands are drawn as a cone; null: the champion
  scheme: null, // the colour scheme, once it has changed since the page loaded
  // The coin's data, loaded with it.
  decimals: 2,
  coverage: null,
  latest: null,
  price: null,
  series: null, // { candles, interval, query, complete }
  board: null, // { data } or { missing } or { error }
});
const listeners = [];

export const getState = () => state;

// refit: the chart frames the newest candles and the horizon again (a new load, not a toggle).
export function update(changes, { refit = false } = {}) {
  state = Object.freeze({ ...state, ...changes });
  const event = { changed: new Set(Object.keys(changes)), refit };
  for (const listener of listeners) listener(state, event);
}

// Listeners are told in the order they subscribed.
export function subscribe(listener) {
  listeners.push(listener);
}

// A load committing its candles and leaderboard, or a new colour scheme, redraws every panel.
const REDRAWN_BY = ['series', 'board', 'scheme'];
export const redraws = (event) => REDRAWN_BY.some((key) => event.changed.has(key));
