// offload dashboard: live parts over the event stream, charts, relative times. No inline
// script (the CSP forbids it); htmx does the requests, this file only tells regions when
// to refresh and moves progress bars.
(function () {
  'use strict';
  const REFRESH_MIN_MS = 1000; // a region refreshes at most once a second
  const last = new WeakMap();
  const pending = new WeakSet();

  // Elements with data-live="job worker …" refresh (htmx trigger "dash-live") on those events.
  function poke(name, data) {
    document.querySelectorAll('[data-live]').forEach(function (el) {
      if (!el.dataset.live.split(' ').includes(name)) return;
      const only = el.dataset.jobFilter;
      if (only && data && data.id && data.id !== only) return;
      if (pending.has(el)) return;
      const wait = Math.max(0, (last.get(el) || 0) + REFRESH_MIN_MS - Date.now());
      pending.add(el);
      setTimeout(function () {
        pending.delete(el);
        last.set(el, Date.now());
        const target = document.getElementById(el.id) || el;
        if (window.htmx) window.htmx.trigger(target, 'dash-live');
      }, wait);
    });
  }

  function fraction(p) {
    if (p == null) return null;
    let f = null;
    if (typeof p === 'object' && typeof p.done === 'number' && typeof p.total === 'number') {
      f = p.total > 0 ? p.done / p.total : null;
    } else if (typeof p === 'object' && typeof p.percent === 'number') {
      f = p.percent / 100;
    } else if (typeof p === 'number') {
      f = p <= 1 ? p : p / 100;
    }
    if (f == null || !isFinite(f)) return null;
    return Math.min(1, Math.max(0, f));
  }

  function progress(ev) {
    const f = fraction(ev.data);
    if (f == null) return;
    const pct = Math.round(f * 100);
    document.querySelectorAll('progress[data-progress="' + ev.id + '"]').forEach(function (el) {
      el.value = pct;
      el.textContent = pct + '%';
    });
    document.querySelectorAll('[data-progress-text="' + ev.id + '"]').forEach(function (el) {
      el.textContent = pct + ' %';
    });
  }

  function connect() {
    const live = document.getElementById('live');
    if (!live || !window.EventSource) return;
    const es = new EventSource('/ui/events');
    const state = function (on) {
      live.textContent = on ? 'live' : 'reconnecting…';
      live.className = 'live ' + (on ? 'on' : 'off');
    };
    es.onopen = function () { state(true); };
    es.onerror = function () { state(false); };
    ['job', 'worker', 'schedule', 'queue'].forEach(function (name) {
      es.addEventListener(name, function (m) {
        let data = null;
        try { data = JSON.parse(m.data); } catch (e) { return; }
        poke(name, data);
      });
    });
    es.addEventListener('progress', function (m) {
      try { progress(JSON.parse(m.data)); } catch (e) { /* a malformed event is skipped */ }
    });
    // Events were lost: everything live reloads its part once.
    es.addEventListener('lagged', function () { ['job', 'worker', 'schedule', 'queue'].forEach(function (n) { poke(n, null); }); });
    window.addEventListener('pagehide', function () { es.close(); });
  }

  // "3 min ago" stays true while the page is open.
  function span(ms) {
    const s = Math.abs(ms) / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function relTimes() {
    const now = Date.now();
    document.querySelectorAll('time[data-ts] .rel').forEach(function (el) {
      const d = now - Number(el.parentNode.dataset.ts);
      el.textContent = Math.abs(d) < 1000 ? 'now' : d > 0 ? span(d) + ' ago' : 'in ' + span(d);
    });
  }

  // Charts: a fixed window of points (the server's series), redrawn in place.
  const charts = {};
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function opts(el, series) {
    return {
      width: Math.max(280, el.clientWidth - 8), height: 200,
      // A minute alone between gaps is still seen: every point is drawn.
      series: [{}].concat(series.map(function (s) { return Object.assign({ width: 2, points: { show: true, size: 6 } }, s); })),
      axes: [{ stroke: css('--muted'), grid: { stroke: css('--line') } },
             { stroke: css('--muted'), grid: { stroke: css('--line') } }],
      legend: { live: false },
    };
  }
  // The window: the last hour or the last day (buttons with data-window, aria-pressed).
  let win = 'hour';
  function windows() {
    document.querySelectorAll('button[data-window]').forEach(function (b) {
      b.addEventListener('click', function () {
        win = b.dataset.window;
        document.querySelectorAll('button[data-window]').forEach(function (o) {
          o.setAttribute('aria-pressed', String(o === b));
        });
        draw();
      });
    });
  }
  function draw() {
    const els = document.querySelectorAll('[data-chart]');
    if (!els.length || !window.uPlot) return;
    fetch('/ui/stats.json?window=' + win, { headers: { 'accept': 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        els.forEach(function (el) {
          const kind = el.dataset.chart;
          const data = kind === 'throughput'
            ? [s.t, s.submitted, s.succeeded, s.failed]
            : [s.t, s.run_p50_ms, s.run_p95_ms, s.wait_p50_ms, s.wait_p95_ms];
          const series = kind === 'throughput'
            ? [{ label: 'submitted', stroke: css('--info') }, { label: 'succeeded', stroke: css('--ok') },
               { label: 'failed', stroke: css('--bad') }]
            : [{ label: 'run p50', stroke: css('--accent') }, { label: 'run p95', stroke: css('--accent'), dash: [6, 4] },
               { label: 'wait p50', stroke: css('--warn') }, { label: 'wait p95', stroke: css('--warn'), dash: [6, 4] }];
          if (charts[kind]) charts[kind].setData(data);
          else charts[kind] = new window.uPlot(opts(el, series), data, el);
        });
      })
      .catch(function () { /* the next round tries again */ });
  }

  document.addEventListener('DOMContentLoaded', function () {
    connect();
    windows();
    relTimes();
    setInterval(relTimes, 15000);
    draw();
    setInterval(draw, 15000);
    // A flash message goes away after a while; the live region keeps the last one readable.
    document.body.addEventListener('htmx:afterSwap', function (e) {
      if (e.detail.target && e.detail.target.id === 'flash') relTimes();
      relTimes();
    });
  });
})();
