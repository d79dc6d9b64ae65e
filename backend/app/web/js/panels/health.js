// The health badge: the service's detailed health, asked again every 30 seconds.

import { healthReport } from '../api.js';
import { $, el } from '../dom.js';
import { epoch, fmtNumber, fmtTime, pad } from '../format.js';

const HEALTH_EVERY_MS = 30_000;

const latency = (ms, prefix) => (ms !== null && ms !== undefined ? `${prefix}${fmtNumber(ms, 1)} ms` : '');

export async function pollHealth() {
  const report = await healthReport('/health/detailed');
  $('health-details').replaceChildren();
  if (!report || !report.status) showUnreachable();
  else showReport(report);
  setTimeout(pollHealth, HEALTH_EVERY_MS);
}

function showUnreachable() {
  $('health').dataset.status = 'unreachable';
  $('health-label').textContent = 'API unreachable';
}

function showReport({ status, database: db, cache, service, timestamp }) {
  $('health').dataset.status = status;
  $('health-label').textContent = `${status[0].toUpperCase()}${status.slice(1)}${latency(db?.latency_ms, ' · db ')}`;
  const rows = [
    ['Service', `${service.name} ${service.version}`],
    ['Environment', service.environment],
    ['Database', `${db.status}${db.latency_ms !== null ? ` · ${fmtNumber(db.latency_ms, 1)} ms` : ''}`],
    ['Cache', `${cache.status}${cache.used_memory_mb !== null ? ` · ${fmtNumber(cache.used_memory_mb, 1)} MB` : ''}`],
    ['Checked', `${fmtTime(epoch(timestamp))}:${pad(new Date(timestamp).getUTCSeconds())} UTC`],
  ];
  for (const [term, value] of rows) $('health-details').append(el('dt', { text: term }), el('dd', { text: value }));
}
