// The leaderboard of the latest finished backtest: models ranked by MAE relative to the
// baseline, with the tests that say whether a difference is real. Without a backtest it says
// how to run one.

import { colorOf } from '../colors.js';
import { $, el } from '../dom.js';
import { epoch, fmtDay, fmtNumber, fmtPct, fmtTime } from '../format.js';
import { redraws } from '../state.js';
import { showBoard } from './board.js';

export function showLeaderboard(state, event) {
  if (!redraws(event)) return;
  $('leaderboard-sub').textContent = '';
  $('leaderboard-title').textContent = `Leaderboard · ${state.symbol} · ${state.horizon}`;
  showBoard('leaderboard', state.board, {
    empty: howToBacktest,
    ready: (data) => {
      $('leaderboard-sub').textContent = describeBacktest(data);
      return el('div', { class: 'table-scroll' }, leaderboardTable(data, state));
    },
  });
}

function howToBacktest({ symbol, horizon }) {
  const command = `cryptopredict backtest ${symbol} -H ${horizon} --windows 30`;
  const curl = `curl -X POST ${location.origin}/api/v1/backtests \\\n  -H 'Content-Type: application/json' \\\n  -d '{"symbol": "${symbol}", "horizon": "${horizon}", "windows": 30}'`;
  return el('div', { class: 'empty', id: 'leaderboard-empty' },
    el('p', {}, el('strong', { text: `No finished backtest for ${symbol} at ${horizon} yet.` }),
      ' A walk-forward backtest scores every model against the random walk on past data; run one from the command line:'),
    el('pre', { text: command }),
    el('p', { text: 'or through the API (it runs in the background; this page shows it once it has finished):' }),
    el('pre', { text: curl }));
}

function describeBacktest(data) {
  const origins = `origins ${fmtDay(epoch(data.first_origin))} → ${fmtDay(epoch(data.last_origin))}`;
  const finished = data.finished_at ? ` · finished ${fmtTime(epoch(data.finished_at))} UTC` : '';
  return `Walk-forward backtest ${data.backtest_id.slice(0, 8)} · ${data.windows} windows, ${origins}${finished}`;
}

function th(text, title) {
  return el('th', { scope: 'col' }, title ? el('abbr', { title, text }) : text);
}

function headings() {
  return el('tr', {},
    th('#', 'Rank by relative MAE'),
    el('th', { scope: 'col', class: 'left', text: 'Model' }),
    th('Rel. MAE', 'Mean absolute error divided by the random walk’s on the same windows: below 1 beats it'),
    th('MAE', 'Mean absolute error, USD'),
    th('MASE', 'MAE scaled by the naive h-step change over a trailing window'),
    th('Direction', 'Share of windows where the forecast got the direction right, vs the share of windows where the price rose (the bar to clear)'),
    th('Cov. 80%', 'Share of actual prices inside the 80% band (ideal: 80%)'),
    th('Cov. 95%', 'Share of actual prices inside the 95% band (ideal: 95%)'),
    th('DM', 'Diebold–Mariano statistic against the random walk: below 0 is better'),
    th('DM p', 'Diebold–Mariano p-value: below 0.05 is a significant difference'),
  );
}

function leaderboardTable(data, { vocabulary, decimals }) {
  const relValues = data.rows.map((r) => r.relative_mae).filter((v) => v !== null);
  const spread = Math.max(0.05, ...relValues.map((v) => Math.abs(v - 1)));
  return el('table', { class: 'leaderboard-table' },
    el('caption', { class: 'sr-only', text: `Models ranked by MAE relative to the random walk, ${data.symbol} ${data.horizon}` }),
    el('thead', {}, headings()),
    el('tbody', {}, data.rows.map((row) => leaderboardRow(row, {
      champion: row.model === data.champion,
      baseline: row.model === vocabulary.baseline,
      spread,
      decimals,
    }))),
  );
}

const offNominal = (value, nominal) => value !== null && Math.abs(value - nominal) > 0.1;

function leaderboardRow(row, { champion, baseline, spread, decimals }) {
  return el('tr', { class: champion ? 'champion' : null, 'data-model': row.model, 'data-champion': champion ? 'true' : null },
    el('td', { class: 'num', text: String(row.rank) }),
    el('th', { scope: 'row' },
      el('span', { class: 'model-cell', style: { '--c': colorOf(row.model) } },
        el('span', { class: 'swatch', 'aria-hidden': 'true' }),
        el('span', { text: row.model }),
        champion ? el('span', { class: 'badge', title: 'recommended: the random walk unless a model beats it significantly', text: '★ champion' }) : null,
        baseline ? el('span', { class: 'baseline-note', title: 'every score is relative to the random walk', text: 'baseline' }) : null,
        row.fit_failures ? el('span', { class: 'baseline-note', title: 'windows where the model failed to fit', text: `${row.fit_failures} fit failures` }) : null)),
    el('td', { class: 'num' }, relativeMae(row.relative_mae, baseline, spread)),
    el('td', { class: 'num', text: fmtNumber(row.mae, decimals) }),
    el('td', { class: 'num', text: fmtNumber(row.mase, 3) }),
    el('td', { class: 'num' }, fmtPct(row.directional_accuracy, 0), el('span', { class: 'muted small', text: ` vs ${fmtPct(row.up_share, 0)}` })),
    el('td', { class: `num ${offNominal(row.coverage_80, 0.8) ? 'off-nominal' : ''}`, text: fmtPct(row.coverage_80, 0) }),
    el('td', { class: `num ${offNominal(row.coverage_95, 0.95) ? 'off-nominal' : ''}`, text: fmtPct(row.coverage_95, 0) }),
    el('td', { class: 'num', text: row.dm_statistic === null ? '—' : fmtNumber(row.dm_statistic, 2) }),
    el('td', { class: `num ${row.dm_p_value !== null && row.dm_p_value < 0.05 ? 'signif' : ''}`, text: fmtNumber(row.dm_p_value, 3) }),
  );
}

// The ratio and a bar from 1 towards it, scaled to the widest difference on the board.
function relativeMae(rel, baseline, spread) {
  // Coloured as shown: a ratio that rounds to 1.000 is a tie with the random walk.
  const tie = rel === null || baseline || Math.abs(rel - 1) < 0.0005;
  const relClass = tie ? '' : rel < 1 ? 'better' : 'worse';
  const barWidth = rel === null ? 0 : Math.min(Math.abs(rel - 1) / spread, 1) * 50;
  const better = rel !== null && rel < 1;
  return el('span', { class: 'rel' },
    el('span', { class: 'rel-bar', 'aria-hidden': 'true' },
      el('span', { style: { left: better ? `${50 - barWidth}%` : '50%', width: `${barWidth}%`, background: better ? 'var(--up)' : 'var(--down)' } })),
    el('span', { class: `rel-value ${relClass}`, text: fmtNumber(rel, 3) }));
}
