// Colours: the theme's, read from the stylesheet's variables, and one per model from the
// palette of the current colour scheme (the baseline gets the neutral one).

import { cssVar } from './dom.js';

const PALETTES = {
  dark: { baseline: '#e2e8f0', others: ['#38bdf8', '#fbbf24', '#f472b6', '#a78bfa', '#fb923c', '#4ade80', '#e879f9', '#facc15'] },
  light: { baseline: '#334155', others: ['#0284c7', '#d97706', '#db2777', '#7c3aed', '#ea580c', '#16a34a', '#c026d3', '#ca8a04'] },
};
const lightQuery = window.matchMedia('(prefers-color-scheme: light)');
const modelColors = new Map();

export const scheme = () => (lightQuery.matches ? 'light' : 'dark');
export const onSchemeChange = (listener) => lightQuery.addEventListener('change', listener);

export function assignColors(models, baseline) {
  const { baseline: neutral, others } = PALETTES[scheme()];
  modelColors.clear();
  let i = 0;
  for (const name of models) modelColors.set(name, name === baseline ? neutral : others[i++ % others.length]);
}

// A model the vocabulary does not list still gets a colour of its own.
export function colorOf(model) {
  if (!modelColors.has(model)) {
    const { others } = PALETTES[scheme()];
    modelColors.set(model, others[modelColors.size % others.length]);
  }
  return modelColors.get(model);
}

export function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

// A computed colour (rgb() or #rrggbb) as #rrggbb, so alpha() can take it.
export function hexOf(color) {
  if (/^#[0-9a-f]{6}$/i.test(color)) return color;
  const m = color.match(/\d+/g);
  return m ? `#${m.slice(0, 3).map((v) => Number(v).toString(16).padStart(2, '0')).join('')}` : '#888888';
}

export function theme() {
  return {
    card: cssVar('--card'),
    border: cssVar('--border'),
    grid: cssVar('--grid'),
    text: cssVar('--text'),
    muted: cssVar('--muted'),
    faint: cssVar('--faint'),
    up: cssVar('--up'),
    down: cssVar('--down'),
    gap: cssVar('--gap'),
    gapEdge: cssVar('--gap-edge'),
    gapText: cssVar('--warn'),
    future: cssVar('--future'),
    font: cssVar('--sans') || 'sans-serif',
  };
}
