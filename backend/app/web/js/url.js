// The address holds the choice (coin, timeframe, horizon, dates), so a view can be shared.

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const SYMBOL_PATTERN = /^[A-Za-z0-9]{1,10}$/;
const PARAMETERS = { symbol: 'coin', interval: 'tf', horizon: 'h', from: 'from', to: 'to' };

// The choice the address makes, leaving out what the vocabulary does not know.
export function choiceFromUrl(vocabulary) {
  const params = new URLSearchParams(location.search);
  const choice = {};
  const coin = params.get('coin');
  if (coin && SYMBOL_PATTERN.test(coin)) choice.symbol = coin.toUpperCase();
  if (vocabulary.intervals.includes(params.get('tf'))) choice.interval = params.get('tf');
  if (vocabulary.horizons.includes(params.get('h'))) choice.horizon = params.get('h');
  for (const key of ['from', 'to']) {
    const value = params.get(key);
    if (value && DAY_PATTERN.test(value)) choice[key] = value;
  }
  return choice;
}

// Subscriber: the address follows the choice once a coin is chosen.
export function showChoiceInUrl(state, event) {
  const keys = Object.keys(PARAMETERS);
  if (!state.symbol || !keys.some((key) => event.changed.has(key))) return;
  const params = new URLSearchParams();
  for (const key of keys) if (state[key]) params.set(PARAMETERS[key], state[key]);
  history.replaceState(null, '', `${location.pathname}?${params}`);
}
