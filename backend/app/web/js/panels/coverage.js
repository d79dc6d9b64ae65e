// The coverage strip under the chart: what is stored, the gaps in it, where the chart's range
// lies; a button per gap shows it on the chart.

import { showRange } from '../actions.js';
import { $, el } from '../dom.js';
import { epoch, fmtDay, fmtNumber, fmtTime } from '../format.js';
import { redraws } from '../state.js';

const DAY = 86400;
const LISTED_GAPS = 6;

export function showCoverage(state, event) {
  if (!redraws(event)) return;
  const coverage = state.coverage;
  const box = $('coverage');
  for (const id of ['coverage-bar', 'gap-list', 'coverage-text']) $(id).replaceChildren();
  if (!coverage || !coverage.count) {
    box.dataset.gaps = '0';
    $('coverage-text').textContent = 'No stored candles.';
    return;
  }
  box.dataset.gaps = String(coverage.gaps.length);
  box.dataset.missing = String(coverage.missing);
  const strip = { first: epoch(coverage.first), span: Math.max(epoch(coverage.last) - epoch(coverage.first), 1) };
  const base = state.vocabulary.secondsOf(coverage.base_timeframe) ?? 3600;
  describe(coverage, state.vocabulary);
  drawStrip(coverage, state.series?.candles ?? [], strip, base);
  listGaps(coverage.gaps, base);
}

function describe(coverage, vocabulary) {
  const { gaps, missing } = coverage;
  $('coverage-text').append(
    'Stored ',
    el('b', { text: `${fmtDay(epoch(coverage.first))} → ${fmtDay(epoch(coverage.last))}` }),
    ` · ${fmtNumber(coverage.count, 0)} ${vocabulary.candleWord(coverage.base_timeframe)} candles · `,
    gaps.length
      ? el('b', { class: 'gap-count', text: `${fmtNumber(missing, 0)} missing in ${gaps.length} gap${gaps.length > 1 ? 's' : ''}` })
      : el('b', { text: 'no gaps' }),
  );
}

// Positions on the strip, as percentages of the stored span.
const percent = ({ first, span }, from, to) => ({ left: `${((from - first) / span) * 100}%`, width: `${((to - from) / span) * 100}%` });

function drawStrip(coverage, candles, strip, base) {
  const bar = $('coverage-bar');
  if (candles.length) {
    const a = candles[0].time;
    const b = Math.max(candles[candles.length - 1].time, a);
    bar.append(el('div', { class: 'view', title: 'the range on the chart', style: percent(strip, a, b) }));
  }
  const withTime = base < DAY;
  for (const gap of coverage.gaps) {
    const a = epoch(gap.start);
    const b = epoch(gap.end) + base;
    const title = `${fmtTime(a, { time: withTime })} → ${fmtTime(b - base, { time: withTime })}: ${gap.missing} missing`;
    bar.append(el('div', { class: 'gap', title, style: percent(strip, a, b) }));
  }
}

function listGaps(gaps, base) {
  const list = $('gap-list');
  const margin = Math.max(base * 20, DAY * 3);
  for (const gap of gaps.slice(0, LISTED_GAPS)) {
    const a = epoch(gap.start);
    const b = epoch(gap.end);
    list.append(
      el('button', { type: 'button', title: 'Show this gap on the chart', onclick: () => showRange(a - margin, b + margin) },
        `Gap ${fmtTime(a, { time: base < DAY })} · ${gap.missing} missing`),
    );
  }
  if (gaps.length > LISTED_GAPS) list.append(el('span', { class: 'muted small', text: `and ${gaps.length - LISTED_GAPS} more` }));
}
