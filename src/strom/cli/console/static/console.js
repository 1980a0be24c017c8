// strom console: the lag plot of a consumer group page, sampled every 2 s while it is open.
"use strict";
(function () {
  const canvas = document.getElementById("lag-plot");
  if (!canvas) return;
  const api = canvas.dataset.api;
  const caption = document.getElementById("lag-caption");
  const series = [];  // {t: ms, total: lag}
  window.stromLag = series;  // for tests and the curious
  const MAX_POINTS = 900;  // 30 minutes at one sample per 2 s

  function draw() {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, left = 60, bottom = 24, top = 10, right = 10;
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = "#d9dee5";
    ctx.fillStyle = "#5b6675";
    ctx.beginPath();
    ctx.moveTo(left, top); ctx.lineTo(left, h - bottom); ctx.lineTo(w - right, h - bottom);
    ctx.stroke();
    if (series.length === 0) return;
    const maxLag = Math.max(1, ...series.map(p => p.total));
    const t0 = series[0].t, t1 = Math.max(series[series.length - 1].t, t0 + 1);
    const x = t => left + (t - t0) / (t1 - t0) * (w - left - right);
    const y = v => h - bottom - v / maxLag * (h - top - bottom);
    ctx.fillText(String(maxLag), 4, top + 8);
    ctx.fillText("0", 4, h - bottom);
    ctx.fillText(new Date(t0).toLocaleTimeString(), left, h - 6);
    ctx.fillText(new Date(t1).toLocaleTimeString(), w - right - 60, h - 6);
    ctx.strokeStyle = "#1f6feb";
    ctx.lineWidth = 2;
    ctx.beginPath();
    series.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.total)) : ctx.moveTo(x(p.t), y(p.total))));
    ctx.stroke();
    series.forEach(p => { ctx.fillStyle = "#1f6feb"; ctx.fillRect(x(p.t) - 2, y(p.total) - 2, 4, 4); });
  }

  async function sample() {
    try {
      const response = await fetch(api, {headers: {"Accept": "application/json"}});
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      const data = await response.json();
      series.push({t: data.time_ms, total: data.total});
      if (series.length > MAX_POINTS) series.shift();
      caption.textContent = "total lag " + data.total.toLocaleString() + " (" + data.state +
        "), " + series.length + " sample(s), every 2 s while this page is open";
      const total = document.getElementById("total-lag");
      if (total) total.textContent = data.total.toLocaleString();
      draw();
    } catch (err) {
      caption.textContent = "lag unavailable: " + err.message;
    }
  }
  sample();
  setInterval(sample, 2000);
})();
