// CryptoPredict dashboard: ES modules, no build step. It reads only the public API (the same
// JSON any client gets), its vocabulary included, and draws with the vendored Lightweight
// Charts. This module starts it: the vocabulary and the coins, the choice in the address,
// the controls, and each panel subscribed to the state.

import { api } from './api.js';
import { chartLibraryLoaded, createPriceChart, showChart, showChartMessage } from './chart.js';
import { assignColors, onSchemeChange, scheme } from './colors.js';
import { reload, setPageState } from './loader.js';
import { showCalibration } from './panels/calibration.js';
import { buildControls, showControls } from './panels/controls.js';
import { showCoverage } from './panels/coverage.js';
import { showForecasts } from './panels/forecasts.js';
import { showHeader } from './panels/header.js';
import { pollHealth } from './panels/health.js';
import { showLeaderboard } from './panels/leaderboard.js';
import { showLegend } from './panels/legend.js';
import { subscribe, update } from './state.js';
import { choiceFromUrl, showChoiceInUrl } from './url.js';
import { loadVocabulary } from './vocabulary.js';

// In this order: the legend lists the models of the scene the chart has just drawn.
const SUBSCRIBERS = [showChoiceInUrl, showControls, showHeader, showChart, showCoverage, showForecasts, showLegend, showLeaderboard, showCalibration];

async function start() {
  pollHealth();
  if (!chartLibraryLoaded()) return fail('The chart library did not load.');
  createPriceChart();
  let vocabulary;
  let coins;
  try {
    [vocabulary, coins] = await Promise.all([loadVocabulary(), api('/api/v1/cryptocurrencies?limit=500').then((page) => page.items)]);
  } catch (error) {
    return fail(`Could not reach the API: ${error.message}`);
  }
  assignColors(vocabulary.models, vocabulary.baseline);
  for (const subscriber of SUBSCRIBERS) subscribe(subscriber);
  onSchemeChange(() => {
    assignColors(vocabulary.models, vocabulary.baseline);
    update({ scheme: scheme() });
  });
  buildControls(vocabulary, coins);
  const choice = choiceFromUrl(vocabulary);
  const symbol = coins.some((c) => c.symbol === choice.symbol) ? choice.symbol : coins[0]?.symbol ?? null;
  update({ vocabulary, coins, ...choice, symbol });
  if (!coins.length) {
    showChartMessage('No coins yet. Load the demo data with: cryptopredict seed');
    return setPageState('ready');
  }
  reload('coin');
}

function fail(message) {
  showChartMessage(message);
  setPageState('error');
}

start();
