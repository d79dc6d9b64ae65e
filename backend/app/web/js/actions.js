// What the user can do: each an explicit change of the state, and a load when it needs data.

import { fmtDay } from './format.js';
import { reload } from './loader.js';
import { getState, update } from './state.js';

export function chooseCoin(symbol) {
  update({ symbol, focus: null });
  reload('coin');
}

export function chooseInterval(interval) {
  update({ interval });
  reload('candles');
}

export function chooseHorizon(horizon) {
  update({ horizon, focus: null });
  reload('board', 'horizon');
}

// dates: { from } or { to } or both, as YYYY-MM-DD in UTC; '' for "up to the newest candle".
export function chooseDates(dates) {
  update(dates);
  reload('candles');
}

export const showLatest = () => chooseDates({ from: '', to: '' });
export const showRange = (fromSeconds, toSeconds) => chooseDates({ from: fmtDay(fromSeconds), to: fmtDay(toSeconds) });

export function toggleModel(name) {
  const hidden = new Set(getState().hidden);
  if (hidden.has(name)) hidden.delete(name);
  else hidden.add(name);
  update({ hidden });
}

// name: the model whose cone the chart draws; null goes back to the champion's.
export function focusModel(name) {
  if (getState().focus !== name) update({ focus: name });
}
