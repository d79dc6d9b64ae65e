// The two cards of the latest backtest, the leaderboard and the calibration plot, show its
// board in the same three states: could not load, no finished backtest yet, or the board.

import { $, el } from '../dom.js';

// card: the card's id, its body's is `${card}-body`; empty and ready make what the body shows.
export function showBoard(card, board, { empty, ready }) {
  const state = !board || board.error ? 'error' : board.missing ? 'empty' : 'ready';
  $(card).dataset.state = state;
  const body = $(`${card}-body`);
  if (state === 'error') body.replaceChildren(el('p', { class: 'error', text: `Could not load the leaderboard: ${board?.error?.message ?? 'unknown error'}` }));
  else if (state === 'empty') body.replaceChildren(empty(board));
  else body.replaceChildren(ready(board.data));
}
