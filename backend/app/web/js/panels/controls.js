// The controls: the coin list, timeframe and horizon buttons built from the vocabulary (what a
// coin's stored candles cannot serve is disabled, with the reason), and the date range.

import { chooseCoin, chooseDates, chooseHorizon, chooseInterval, showLatest } from '../actions.js';
import { $, el } from '../dom.js';

// Each group of buttons: its fieldset, the inputs' name, their id prefix, and what they choose.
const GROUPS = {
  interval: { fieldset: 'timeframe', prefix: 'tf', choose: chooseInterval },
  horizon: { fieldset: 'horizon', prefix: 'h', choose: chooseHorizon },
};

export function buildControls(vocabulary, coins) {
  fillButtons('interval', vocabulary.intervals);
  fillButtons('horizon', vocabulary.horizons);
  const select = $('coin');
  select.replaceChildren(...coins.map((c) => el('option', { value: c.symbol, text: `${c.symbol} · ${c.name}${c.is_active ? '' : ' (inactive)'}` })));
  select.disabled = !coins.length;
  select.addEventListener('change', (event) => chooseCoin(event.target.value));
  $('controls').addEventListener('submit', (event) => event.preventDefault());
  for (const key of ['from', 'to']) $(key).addEventListener('change', (event) => chooseDates({ [key]: event.target.value }));
  $('latest').addEventListener('click', showLatest);
}

function fillButtons(name, values) {
  const { fieldset, prefix, choose } = GROUPS[name];
  const buttons = values.flatMap((value) => {
    const id = `${prefix}-${value}`;
    const input = el('input', { type: 'radio', name, id, value, onchange: () => choose(value) });
    return [input, el('label', { for: id, text: value })];
  });
  document.querySelector(`#${fieldset} .segments`).replaceChildren(...buttons);
}

export function showControls(state, event) {
  const { changed } = event;
  if (changed.has('symbol') && state.symbol) $('coin').value = state.symbol;
  if (changed.has('coverage')) disableWhatCannotBeShown(state);
  for (const name of Object.keys(GROUPS)) if (changed.has(name) && state[name]) check(name, state[name]);
  for (const key of ['from', 'to']) if (changed.has(key)) $(key).value = state[key];
}

function check(name, value) {
  const input = document.querySelector(`input[name="${name}"][value="${value}"]`);
  if (input) input.checked = true;
}

function disableWhatCannotBeShown({ vocabulary, coverage, latest, symbol }) {
  const servable = vocabulary.servable(coverage, latest);
  const intervals = new Set(servable.intervals);
  const horizons = new Set(servable.horizons);
  for (const input of document.querySelectorAll('input[name="interval"]')) {
    const reason = `${symbol} stores ${vocabulary.candleWord(servable.base)} candles: finer intervals cannot be built from them`;
    enable(input, intervals.has(input.value), `${input.value} candles`, reason);
  }
  for (const input of document.querySelectorAll('input[name="horizon"]')) {
    const reason = `${symbol}'s candles are too coarse for a ${input.value} horizon`;
    enable(input, horizons.has(input.value), `forecasts ${input.value} ahead`, reason);
  }
}

function enable(input, allowed, title, reason) {
  input.disabled = !allowed;
  input.nextElementSibling.title = allowed ? title : reason;
}
