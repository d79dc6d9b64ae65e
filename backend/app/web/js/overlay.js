// The forecast overlay: a series primitive of Lightweight Charts. Behind the candles it draws
// gaps in the stored data and the future region; on top, each model's forecast path, its
// bands at the chosen horizon and the focused model's 80/95% cone. Times are mapped to logical
// indexes of the regular grid the candles sit on, so points fall between bars exactly where
// their timestamps are.

import { alpha } from './colors.js';
import { fmtNumber } from './format.js';

export const WHISKER_STEP = 8; // px between the models' band whiskers

export class ForecastOverlay {
  constructor() {
    this.scene = null;
    this.chart = null;
    this.series = null;
    this.requestUpdate = null;
    const overlay = this;
    this.views = [
      { zOrder: () => 'bottom', renderer: () => ({ draw: (target) => overlay.drawBehind(target) }) },
      { zOrder: () => 'normal', renderer: () => ({ draw: (target) => overlay.drawFront(target) }) },
    ];
  }

  attached({ chart, series, requestUpdate }) {
    this.chart = chart;
    this.series = series;
    this.requestUpdate = requestUpdate;
  }

  detached() {
    this.chart = this.series = this.requestUpdate = null;
  }

  paneViews() {
    return this.views;
  }

  set(scene) {
    this.scene = scene;
    if (this.requestUpdate) this.requestUpdate();
  }

  autoscaleInfo(from, to) {
    const scene = this.scene;
    if (!scene) return null;
    let min = Infinity;
    let max = -Infinity;
    for (const model of scene.models) {
      if (!model.visible) continue;
      for (const point of model.points) {
        if (point.logical < from - 1 || point.logical > to + 1) continue;
        const bands = point.horizon === scene.horizon || model.focused;
        min = Math.min(min, bands ? point.lower95 ?? point.price : point.price);
        max = Math.max(max, bands ? point.upper95 ?? point.price : point.price);
      }
    }
    return Number.isFinite(min) ? { priceRange: { minValue: min, maxValue: max } } : null;
  }

  // The library maps whole logical indexes only; in between, interpolate.
  x(logical) {
    const scale = this.chart.timeScale();
    const whole = Math.floor(logical);
    const a = scale.logicalToCoordinate(whole);
    if (a === null || logical === whole) return a;
    const b = scale.logicalToCoordinate(whole + 1);
    return b === null ? a : a + (logical - whole) * (b - a);
  }

  y(price) {
    return this.series.priceToCoordinate(price);
  }

  drawBehind(target) {
    const scene = this.scene;
    if (!scene || !this.chart) return;
    target.useMediaCoordinateSpace(({ context: ctx, mediaSize }) => {
      ctx.save();
      ctx.font = `11px ${scene.theme.font}`;
      for (const gap of scene.gaps) this.drawGap(ctx, gap, mediaSize);
      if (scene.origin !== null) this.drawFuture(ctx, mediaSize);
      ctx.restore();
    });
  }

  // A hatched band with its label: across the top when it fits, else written downwards.
  drawGap(ctx, gap, { width, height }) {
    const theme = this.scene.theme;
    const a = this.x(gap.from);
    const b = this.x(gap.to);
    if (a === null || b === null || b < 0 || a > width) return;
    const left = Math.max(a, -2);
    const right = Math.min(Math.max(b, a + 2), width + 2);
    ctx.fillStyle = theme.gap;
    ctx.fillRect(left, 0, right - left, height);
    ctx.strokeStyle = theme.gapEdge;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.save();
    ctx.rect(left, 0, right - left, height);
    ctx.clip();
    for (let s = left - height; s < right; s += 9) {
      ctx.moveTo(s, height);
      ctx.lineTo(s + height, 0);
    }
    ctx.globalAlpha = 0.35;
    ctx.stroke();
    ctx.restore();
    ctx.fillStyle = theme.gapText;
    if (right - left > 70) ctx.fillText(gap.label, left + 6, 40);
    else if (right - left > 2) {
      ctx.save();
      ctx.translate(left + (right - left) / 2 + 4, 32);
      ctx.rotate(Math.PI / 2);
      ctx.fillText(gap.label, 0, 0);
      ctx.restore();
    }
  }

  // The region right of the forecasts' origin, and a dashed line at the origin itself.
  drawFuture(ctx, { width, height }) {
    const theme = this.scene.theme;
    const x0 = this.x(this.scene.origin);
    if (x0 === null || x0 >= width) return;
    ctx.fillStyle = theme.future;
    ctx.fillRect(Math.max(x0, 0), 0, width - Math.max(x0, 0), height);
    if (x0 < 0) return;
    ctx.strokeStyle = theme.faint;
    ctx.setLineDash([3, 4]);
    ctx.beginPath();
    ctx.moveTo(Math.round(x0) + 0.5, 0);
    ctx.lineTo(Math.round(x0) + 0.5, height);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = theme.muted;
    ctx.fillText('forecast →', x0 + 6, 40);
  }

  drawFront(target) {
    const scene = this.scene;
    if (!scene || !this.chart || scene.origin === null) return;
    const ox = this.x(scene.origin);
    const oy = this.y(scene.originPrice);
    if (ox === null || oy === null) return;
    target.useMediaCoordinateSpace(({ context: ctx, mediaSize }) => {
      ctx.save();
      ctx.lineJoin = 'round';
      ctx.lineCap = 'round';
      const visible = scene.models.filter((m) => m.visible);
      const focused = visible.find((m) => m.focused);
      if (focused) this.drawCone(ctx, focused, ox, oy);
      for (const model of visible) this.drawPath(ctx, model, ox, oy, scene.horizon);
      this.drawWhiskers(ctx, visible, scene.horizon, ox, mediaSize.width);
      ctx.restore();
    });
  }

  project(points, key) {
    const out = [];
    for (const point of points) {
      const value = point[key];
      if (value === null || value === undefined) return null;
      const x = this.x(point.logical);
      const y = this.y(value);
      if (x === null || y === null) return null;
      out.push([x, y]);
    }
    return out;
  }

  drawCone(ctx, model, ox, oy) {
    for (const [lower, upper, a] of [['lower95', 'upper95', 0.1], ['lower80', 'upper80', 0.16]]) {
      const top = this.project(model.points, upper);
      const bottom = this.project(model.points, lower);
      if (!top || !bottom || !top.length) continue;
      ctx.beginPath();
      ctx.moveTo(ox, oy);
      for (const [x, y] of top) ctx.lineTo(x, y);
      for (const [x, y] of bottom.reverse()) ctx.lineTo(x, y);
      ctx.closePath();
      ctx.fillStyle = alpha(model.color, a);
      ctx.fill();
    }
  }

  drawPath(ctx, model, ox, oy, horizon) {
    const points = this.project(model.points, 'price');
    if (!points || !points.length) return;
    ctx.strokeStyle = model.color;
    ctx.lineWidth = model.focused ? 2.25 : 1.5;
    ctx.globalAlpha = model.focused ? 1 : 0.85;
    ctx.beginPath();
    ctx.moveTo(ox, oy);
    for (const [x, y] of points) ctx.lineTo(x, y);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = model.color;
    model.points.forEach((point, i) => {
      if (point.horizon === horizon) return; // drawn with its bands
      ctx.beginPath();
      ctx.arc(points[i][0], points[i][1], 2.5, 0, Math.PI * 2);
      ctx.fill();
    });
  }

  // One whisker per model at the chosen horizon, side by side around the target time (moved
  // right when the target is so close that the group would cover the last candle).
  drawWhiskers(ctx, models, horizon, ox, mediaWidth) {
    const items = models
      .map((model) => ({ model, point: model.points.find((p) => p.horizon === horizon) }))
      .filter((item) => item.point);
    items.forEach(({ model, point }, k) => {
      const x0 = this.x(point.logical);
      if (x0 === null) return;
      const first = Math.max(x0 - ((items.length - 1) / 2) * WHISKER_STEP, ox + 8);
      const x = first + k * WHISKER_STEP;
      const y = this.y(point.price);
      this.drawWhisker(ctx, model, point, x, y);
      if (model.focused && y !== null) {
        const group = { left: first, right: first + (items.length - 1) * WHISKER_STEP };
        this.drawPriceLabel(ctx, model, point, y, group, { ox, mediaWidth });
      }
    });
  }

  drawWhisker(ctx, model, point, x, y) {
    const y95 = [this.y(point.lower95), this.y(point.upper95)];
    const y80 = [this.y(point.lower80), this.y(point.upper80)];
    ctx.strokeStyle = model.color;
    if (y95[0] !== null && y95[1] !== null) {
      ctx.lineWidth = 1.25;
      ctx.beginPath();
      ctx.moveTo(x, y95[0]);
      ctx.lineTo(x, y95[1]);
      ctx.moveTo(x - 2.5, y95[0]);
      ctx.lineTo(x + 2.5, y95[0]);
      ctx.moveTo(x - 2.5, y95[1]);
      ctx.lineTo(x + 2.5, y95[1]);
      ctx.stroke();
    }
    if (y80[0] !== null && y80[1] !== null) {
      ctx.lineWidth = 5;
      ctx.lineCap = 'butt';
      ctx.globalAlpha = 0.55;
      ctx.beginPath();
      ctx.moveTo(x, y80[0]);
      ctx.lineTo(x, y80[1]);
      ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.lineCap = 'round';
    }
    if (y === null) return;
    ctx.beginPath();
    ctx.arc(x, y, model.focused ? 4.5 : 3.5, 0, Math.PI * 2);
    ctx.fillStyle = model.color;
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = this.scene.theme.card;
    ctx.stroke();
  }

  // The focused model's price, left of the whole group of whiskers, where the price axis
  // cannot cut it off (right of it when the left has no room).
  drawPriceLabel(ctx, model, point, y, group, { ox, mediaWidth }) {
    const text = fmtNumber(point.price, this.scene.decimals);
    ctx.font = `600 11px ${this.scene.theme.font}`;
    const w = ctx.measureText(text).width + 10;
    const fitsLeft = group.left - 10 - w >= ox + 4;
    const fitsRight = group.right + 10 + w <= mediaWidth;
    const left = fitsLeft || !fitsRight ? Math.max(group.left - 10 - w, 0) : group.right + 10;
    ctx.fillStyle = this.scene.theme.card;
    ctx.globalAlpha = 0.85;
    ctx.fillRect(left, y - 9, w, 18);
    ctx.globalAlpha = 1;
    ctx.fillStyle = model.color;
    ctx.fillText(text, left + 5, y + 4);
  }
}
