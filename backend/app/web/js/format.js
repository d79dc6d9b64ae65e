// Numbers, prices, times and lengths of time as the page writes them: en-US digits, UTC.

export const epoch = (iso) => Math.floor(Date.parse(iso) / 1000);
export const pad = (n) => String(n).padStart(2, '0');

export function fmtTime(seconds, { time = true } = {}) {
  const d = new Date(seconds * 1000);
  const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return time ? `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}` : day;
}

export const fmtDay = (seconds) => fmtTime(seconds, { time: false });

const numberFormats = new Map();
export function fmtNumber(value, decimals) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  let format = numberFormats.get(decimals);
  if (!format) {
    format = new Intl.NumberFormat('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
    numberFormats.set(decimals, format);
  }
  return format.format(value);
}

// Decimals a coin's prices are written with: cents, unless the coin trades below a dollar.
export function decimalsFor(price) {
  if (!price || price >= 1) return 2;
  if (price >= 0.01) return 4;
  return 6;
}

// Bands are read as ranges: whole dollars are enough once prices run into the thousands.
export function fmtBand(lower, upper, decimals) {
  const shown = Math.abs(upper ?? 0) >= 1000 ? 0 : decimals;
  return `${fmtNumber(lower, shown)} – ${fmtNumber(upper, shown)}`;
}

export const fmtPct = (fraction, digits = 1) => (fraction === null || fraction === undefined ? '—' : `${fmtNumber(fraction * 100, digits)}%`);

export function fmtChange(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '—';
  const sign = fraction > 0 ? '+' : fraction < 0 ? '−' : '±';
  return `${sign}${fmtNumber(Math.abs(fraction) * 100, 2)}%`;
}

export function fmtCompact(value) {
  if (value === null || value === undefined) return '—';
  return new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 }).format(value);
}

// Largest first: a length of time is written in the largest unit that divides it.
const UNITS = [
  { seconds: 604800, short: 'w', word: 'week', once: 'weekly' },
  { seconds: 86400, short: 'd', word: 'day', once: 'daily' },
  { seconds: 3600, short: 'h', word: 'hour', once: 'hourly' },
  { seconds: 60, short: 'm', word: 'minute', once: 'minute' },
];
const unitOf = (seconds) => UNITS.find((unit) => seconds % unit.seconds === 0);

export function fmtDuration(seconds) {
  const unit = unitOf(seconds);
  return unit ? `${seconds / unit.seconds}${unit.short}` : `${Math.round(seconds / 60)}m`;
}

// Candles of a length as prose names them: "hourly", "4-hour", "daily".
export function candleWord(seconds) {
  const unit = unitOf(seconds);
  if (!unit) return `${seconds}-second`;
  const count = seconds / unit.seconds;
  return count === 1 ? unit.once : `${count}-${unit.word}`;
}
