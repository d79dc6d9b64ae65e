// The models under the chart: a chip each that hides or shows its forecast, the champion
// starred, the focused model's chip outlined. Subscribes after the chart: it lists the
// models of the scene the chart has just drawn.

import { toggleModel } from '../actions.js';
import { shownScene } from '../chart.js';
import { $, el } from '../dom.js';
import { redraws } from '../state.js';

const HINT = 'line: median · bar: 80% · whisker: 95% · cone: champion (hover a forecast row for another)';

export function showLegend(state, event) {
  if (redraws(event) || event.changed.has('hidden')) renderLegend(state);
  else if (event.changed.has('focus')) markFocus(state);
}

function renderLegend(state) {
  const box = $('model-legend');
  box.replaceChildren();
  const scene = shownScene();
  if (!scene || !scene.models.length) {
    const reason = !state.latest?.predictions?.length
      ? `No forecasts for ${state.symbol} yet: cryptopredict predict ${state.symbol}`
      : 'Forecasts are drawn when the range reaches the newest candle.';
    box.append(el('span', { class: 'legend-title', text: reason }));
    return;
  }
  const champion = state.latest.champion?.[state.horizon];
  box.append(el('span', { class: 'legend-title', text: 'Models' }));
  box.append(...scene.models.map((model) => chip(model, model.name === champion)));
  box.append(el('span', { class: 'legend-hint', text: HINT }));
}

function chip(model, champion) {
  return el(
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
    champion ? el('span', { class: 'star', title: 'champion', text: '★' }) : null,
  );
}

function markFocus({ focus, latest, horizon }) {
  const focused = focus ?? latest?.champion?.[horizon];
  for (const node of document.querySelectorAll('.chip')) node.classList.toggle('focused', node.dataset.model === focused);
}
