// The service's vocabulary, asked of GET /api/v1/meta once at start-up: timeframes, horizons,
// models and candle page sizes. The page copies none of it; the rules below only combine it.

import { api } from './api.js';
import { candleWord } from './format.js';

// The newest-candles view asks for the largest page the API caches that spans at most ten
// years: a thousand weekly candles would reach back further than any coin has traded.
const NEWEST_SPAN_SECONDS = 10 * 365 * 86400;
// The page opens on the one-day horizon when a coin's candles allow it.
const PREFERRED_HORIZON_SECONDS = 86400;
const UNORDERED = 999;

export async function loadVocabulary() {
  return new Vocabulary(await api('/api/v1/meta'));
}

class Vocabulary {
  constructor(meta) {
    this.seconds = new Map(meta.timeframes.map((frame) => [frame.name, frame.seconds]));
    this.intervals = meta.timeframes.filter((frame) => frame.queryable).map((frame) => frame.name);
    this.horizons = meta.horizons.map((horizon) => horizon.name);
    this.horizonSteps = new Map(meta.horizons.map((horizon) => [horizon.name, horizon.steps]));
    this.preferredHorizon = meta.horizons.find((horizon) => horizon.seconds === PREFERRED_HORIZON_SECONDS)?.name;
    this.models = meta.models;
    this.baseline = meta.baseline;
    this.cachedLimits = meta.candle_pages.cached_limits;
    this.rangeLimit = meta.candle_pages.max_limit;
    Object.freeze(this);
  }

  secondsOf(timeframe) {
    return this.seconds.get(timeframe);
  }

  candleWord(timeframe) {
    const seconds = this.secondsOf(timeframe);
    return seconds ? candleWord(seconds) : timeframe;
  }

  // What a coin can be shown at: the intervals the API can build from its stored candles
  // (whole multiples of their length), and the horizons a whole number of them long or
  // that it already has forecasts for.
  servable(coverage, latest) {
    const base = coverage?.base_timeframe ?? null;
    const predicted = new Set((latest?.predictions ?? []).map((p) => p.horizon));
    const length = this.secondsOf(base);
    const fits = (seconds) => !base || (seconds >= length && seconds % length === 0);
    return {
      base,
      intervals: this.intervals.filter((name) => fits(this.secondsOf(name))),
      horizons: this.horizons.filter((name) => predicted.has(name) || !base || base in this.horizonSteps.get(name)),
    };
  }

  chooseInterval({ intervals }, current) {
    return intervals.includes(current) ? current : intervals[0] ?? this.intervals.at(-1);
  }

  chooseHorizon({ horizons }, current) {
    if (horizons.includes(current)) return current;
    return horizons.includes(this.preferredHorizon) ? this.preferredHorizon : horizons[0] ?? this.preferredHorizon;
  }

  newestLimit(interval) {
    const span = this.secondsOf(interval);
    return this.cachedLimits.filter((limit) => limit * span <= NEWEST_SPAN_SECONDS).at(-1) ?? this.cachedLimits[0];
  }

  // Models in the vocabulary's order; one it does not know goes last.
  modelOrder(name) {
    const index = this.models.indexOf(name);
    return index < 0 ? UNORDERED : index;
  }

  inModelOrder(items, nameOf = (item) => item) {
    return [...items].sort((a, b) => this.modelOrder(nameOf(a)) - this.modelOrder(nameOf(b)));
  }
}
