// The calibration plot of the latest backtest: per model, the confidence it stated against how
// often the price landed within the tolerance. A point's area is its number of forecasts.

import { colorOf } from '../colors.js';
import { el, svg } from '../dom.js';
import { fmtPct } from '../format.js';
import { redraws } from '../state.js';
import { showBoard } from './board.js';

const W = 320;
const H = 230;
const M = { left: 40, right: 12, top: 10, bottom: 36 };
const sx = (v) => M.left + v * (W - M.left - M.right);
const sy = (v) => H - M.bottom - v * (H - M.top - M.bottom);

export function showCalibration(state, event) {
  if (!redraws(event)) return;
  showBoard('calibration', state.board, {
    empty: () => el('div', { class: 'empty' }, el('p', { text: 'Calibration comes with the backtest: see the leaderboard.' })),
    ready: (data) => calibrationPlot(data, state.vocabulary),
  });
}

function calibrationPlot(data, vocabulary) {
  const models = vocabulary.inModelOrder(Object.keys(data.calibration));
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'calibration-plot', role: 'img', id: 'calibration-plot', 'aria-labelledby': 'calibration-plot-title' });
  plot.append(svg('title', { id: 'calibration-plot-title' }, `Calibration of ${data.symbol} ${data.horizon} confidence scores: observed hit rate against stated confidence, per model`));
  plot.append(...axes());
  const points = plotModels(plot, data.calibration, models);
  plot.dataset.points = String(points);
  const legend = el('div', { class: 'calibration-legend' }, models.map((name) => el('span', { style: { '--c': colorOf(name) }, text: name })));
  const note = points ? null : el('p', { class: 'muted small', text: 'No scored confidence in the second half of the windows yet.' });
  return el('div', {}, plot, legend, note);
}

function axes() {
  const grid = [0, 0.25, 0.5, 0.75, 1].flatMap((v) => [
    svg('line', { class: 'gridline', x1: sx(0), x2: sx(1), y1: sy(v), y2: sy(v) }),
    svg('line', { class: 'gridline', x1: sx(v), x2: sx(v), y1: sy(0), y2: sy(1) }),
    svg('text', { class: 'tick', x: sx(v), y: H - M.bottom + 14, 'text-anchor': 'middle' }, `${v * 100}%`),
    svg('text', { class: 'tick', x: M.left - 6, y: sy(v) + 3, 'text-anchor': 'end' }, `${v * 100}%`),
  ]);
  const diagonal = (-Math.atan((H - M.top - M.bottom) / (W - M.left - M.right)) * 180) / Math.PI;
  return [
    ...grid,
    svg('line', { class: 'axis', x1: sx(0), x2: sx(1), y1: sy(0), y2: sy(0) }),
    svg('line', { class: 'axis', x1: sx(0), x2: sx(0), y1: sy(0), y2: sy(1) }),
    svg('line', { class: 'ideal', x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1) }),
    svg('text', { class: 'label', x: sx(0.5), y: H - 6, 'text-anchor': 'middle' }, 'stated confidence'),
    svg('text', { class: 'label', x: 11, y: sy(0.5), 'text-anchor': 'middle', transform: `rotate(-90 11 ${sy(0.5)})` }, 'observed hit rate'),
    svg('text', { class: 'tick', x: sx(0.1), y: sy(0.1) - 5, transform: `rotate(${diagonal} ${sx(0.1)} ${sy(0.1) - 5})` }, 'perfectly calibrated'),
  ];
}

// Draws each model's line and points; returns how many points it drew.
function plotModels(plot, calibration, models) {
  const maxCount = Math.max(1, ...models.flatMap((name) => calibration[name].map((b) => b.count)));
  const taken = [];
  let points = 0;
  for (const name of models) {
    const color = colorOf(name);
    const buckets = calibration[name].filter((b) => b.count > 0 && b.mean_confidence !== null && b.hit_rate !== null);
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
  return points;
}
