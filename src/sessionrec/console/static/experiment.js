// Experiment dashboard: numbers from /ui/api/experiment (aggregated on the server), drawn as
// text and SVG; nothing is inserted as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function s(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  const pct = (x, d) => (x === null || x === undefined) ? "n/a" : (100 * x).toFixed(d === undefined ? 2 : d) + "%";
  const int = (x) => (x === null || x === undefined) ? "n/a" : Number(x).toLocaleString("en-US");
  const p3 = (x) => (x === null || x === undefined) ? "n/a" : Number(x).toPrecision(3);
  const cell = (value, text) => h("td", {"data-value": value === null ? "" : value}, text);

  function table(id, header, rows) {
    const t = $(id);
    t.tHead.replaceChildren(h("tr", {}, header.map((x) => h("th", {scope: "col"}, x))));
    t.tBodies[0].replaceChildren(...rows);
  }

  function render(d) {
    const total = Object.values(d.srm.observed).reduce((a, b) => a + b, 0);
    $("period").textContent = int(d.period.events) + " events from " + String(d.period.first).slice(0, 16).replace("T", " ") +
      " to " + String(d.period.last).slice(0, 16).replace("T", " ") + " UTC · control " + d.settings.control +
      " · analysed in " + d.seconds + " s · updated " + new Date(d.computed_at * 1000).toLocaleTimeString();
    const srm = $("srm");
    srm.className = d.srm.mismatch ? "notice error" : "";
    srm.replaceChildren("Chi-square " + (d.srm.chi2 === null ? "inf" : d.srm.chi2.toFixed(2)) + " (" + d.srm.dof + " df), p = ",
      h("span", {id: "srm-p", "data-value": d.srm.p_value}, p3(d.srm.p_value)), " — ",
      d.srm.mismatch ? "sample-ratio mismatch: the split does not follow the configured weights; find the cause before trusting any result."
                     : "no sample-ratio mismatch (alert at p < " + d.srm.threshold + ").");
    $("verdicts").replaceChildren(...d.comparisons.map((c) => h("li", {class: c.significant ? "sig" : ""}, c.verdict)));
    table("variants", ["Variant", "Units", "Expected units", "Impressions", "Clicks", "CTR", "Sales (14 d)", "Conversion (14 d)", "Fallbacks"],
      d.variants.map((v) => h("tr", {"data-variant": v.variant}, h("th", {scope: "row"}, v.variant),
        cell(v.units, int(v.units)), cell(d.srm.expected[v.variant] ?? null, d.srm.expected[v.variant] === undefined ? "n/a" : int(Math.round(d.srm.expected[v.variant]))),
        cell(v.impressions, int(v.impressions)), cell(v.clicks, int(v.clicks)), cell(v.ctr, pct(v.ctr)),
        cell(v.sales, int(v.sales)), cell(v.conversion, pct(v.conversion, 3)), cell(v.fallbacks, int(v.fallbacks)))));
    table("comparisons", ["KPI", "Variant", "Control value", "Variant value", "Difference (95% CI)", "p", "Holm p", "Always-valid p", "Significant"],
      d.comparisons.map((c) => {
        const rate = c.kpi !== "revenue_per_impression";  // the others are shares: points
        const val = (x) => rate ? pct(x, 3) : Number(x).toFixed(4);
        const dif = (x) => rate ? (100 * x).toFixed(3) : Number(x).toFixed(4);
        return h("tr", {"data-variant": c.variant, "data-kpi": c.kpi},
        h("th", {scope: "row"}, d.kpi_labels[c.kpi] || c.kpi), h("td", {}, c.variant),
        cell(c.control_value, val(c.control_value)), cell(c.variant_value, val(c.variant_value)),
        h("td", {}, dif(c.diff) + (rate ? " pts (" : " (") + dif(c.low) + " to " + dif(c.high) + ")"),
        cell(c.p_value, p3(c.p_value)), cell(c.p_holm, p3(c.p_holm)), cell(c.p_always_valid ?? null, p3(c.p_always_valid)),
        h("td", {}, c.significant ? "yes" : "no"));
      }));
    charts(d);
  }

  function chart(title, series, variants, key) {
    const W = 520, H = 200, L = 48, B = 24, T = 10, R = 10;
    const days = [...new Set(series.map((r) => r.day))].sort();
    const pts = series.filter((r) => r[key]);
    const lows = pts.map((r) => Math.max(0, r[key].low)), highs = pts.map((r) => r[key].high);
    const lo = 0, hi = Math.max(1e-9, ...highs);
    const x = (day) => L + (W - L - R) * (days.length > 1 ? days.indexOf(day) / (days.length - 1) : 0.5);
    const y = (v) => H - B - (H - B - T) * (Math.max(lo, v) - lo) / (hi - lo);
    const svg = s("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title});
    svg.append(s("rect", {x: L, y: T, width: W - L - R, height: H - B - T, class: "frame"}));
    for (const f of [0, 0.5, 1]) {
      const v = lo + f * (hi - lo);
      const t = s("text", {x: L - 4, y: y(v) + 4, class: "axis", "text-anchor": "end"});
      t.textContent = pct(v, 1);
      svg.append(t);
    }
    [days[0], days[days.length - 1]].forEach((day, i) => {
      const t = s("text", {x: x(day), y: H - 6, class: "axis", "text-anchor": i ? "end" : "start"});
      t.textContent = day;
      svg.append(t);
    });
    variants.forEach((v, i) => {
      const rows = series.filter((r) => r.variant === v && r[key]);
      if (!rows.length) return;
      const band = rows.map((r) => x(r.day) + "," + y(r[key].high)).concat(rows.slice().reverse().map((r) => x(r.day) + "," + y(r[key].low)));
      svg.append(s("polygon", {points: band.join(" "), class: "band c" + (i % 8)}));
      svg.append(s("polyline", {points: rows.map((r) => x(r.day) + "," + y(r[key].value)).join(" "), class: "line c" + (i % 8)}));
    });
    const legend = h("p", {class: "legend"}, variants.map((v, i) => h("span", {class: "key c" + (i % 8)}, v)));
    return h("figure", {class: "chart"}, h("figcaption", {}, title), svg, legend);
  }

  function charts(d) {
    const variants = d.variants.map((v) => v.variant).filter((v) => d.series.some((r) => r.variant === v));
    const out = [];
    for (const kpi of ["ctr", "conversion"]) {
      for (const scope of ["day", "cumulative"]) {
        out.push(chart((d.kpi_labels[kpi] || kpi) + (scope === "day" ? " per day" : " cumulative"), d.series, variants, scope + "_" + kpi));
      }
    }
    $("charts").replaceChildren(...out);
  }

  let shownAt = null;
  async function refresh() {
    let wait = 5000;
    try {
      const r = await fetch("/ui/api/experiment");
      const d = await r.json();
      if (!r.ok) throw new Error(d.detail || ("HTTP " + r.status));
      if (d.status === "ready" && d.computed_at === shownAt) {
        // nothing new since the last analysis: leave the page as it is
      } else if (d.status === "ready") {
        shownAt = d.computed_at;
        performance.mark("dashboard-data");
        render(d);
        $("state").hidden = true;
        $("dash").hidden = false;
        performance.mark("dashboard-drawn");
        performance.measure("dashboard-render", "dashboard-data", "dashboard-drawn");
        document.body.dataset.ready = "1";
      } else {
        $("state").hidden = false;
        $("state").className = "notice" + (d.status === "error" ? " error" : "");
        $("state").textContent = d.message;
        document.body.dataset.ready = d.status;
        if (d.status === "computing") wait = 1000;
      }
    } catch (err) {
      $("state").hidden = false;
      $("state").className = "notice error";
      $("state").textContent = "The dashboard could not be loaded: " + err.message;
    }
    setTimeout(refresh, wait);
  }
  refresh();
})();
