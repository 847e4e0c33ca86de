// Session playground: every value from the server is put into the page as text (never HTML).
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  let sessionId = boot.session_id;
  const trail = [];
  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function label(p) {
    return p.name || ("Product " + p.id);
  }

  function details(p) {
    const parts = [];
    if (p.name) parts.push("#" + p.id);
    if (p.category) parts.push(p.category);
    if (p.brand) parts.push(p.brand);
    if (typeof p.price === "number") parts.push(p.price.toFixed(2));
    return parts.join(" · ");
  }

  function status(text, kind) {
    const s = $("status");
    s.textContent = text || "";
    s.hidden = !text;
    s.className = "notice" + (kind ? " " + kind : "");
  }

  function productCard(p, extra) {
    return h("li", {class: "card"},
      h("button", {type: "button", class: "product-link", "data-product": p.id,
                   on: {click: () => openProduct(p.id)}},
        h("span", {class: "pname"}, label(p)),
        h("span", {class: "pmeta"}, details(p)),
        extra || null));
  }

  function showResults(list, message) {
    const ul = $("results");
    ul.replaceChildren(...list.map((p) => productCard(p)));
    if (!list.length) ul.append(h("li", {class: "muted"}, message || "No products."));
  }

  async function search(ev) {
    ev.preventDefault();
    const q = $("q").value.trim();
    if (!q) {
      status("Empty search: type a product id, or part of a name, category or brand.", "warn");
      $("q").focus();
      return;
    }
    const r = await fetch("/ui/api/products?q=" + encodeURIComponent(q));
    const body = await r.json();
    if (!r.ok) { status(body.detail || ("Search failed: HTTP " + r.status), "error"); return; }
    status(body.message, body.message ? "warn" : null);
    $("results-h").textContent = "Products matching “" + q + "”";
    showResults(body.products, body.message);
  }

  function flags(lane) {
    const out = [];
    if (lane.fallback) out.push(h("span", {class: "flag fallback"}, "fallback" + (lane.reason ? ": " + lane.reason : "")));
    for (const c of lane.cold_start || []) out.push(h("span", {class: "flag cold"}, "cold_start: " + c));
    return out;
  }

  function renderLane(lane) {
    const box = document.querySelector('.lane[data-lane="' + CSS.escape(lane.name) + '"]');
    if (!box) return;
    if (lane.error) return;  // shown by the server-rendered page
    const meta = box.querySelector(".meta");
    meta.replaceChildren(
      h("span", {}, lane.model + " · " + lane.items.length + " items · " + lane.ms.toFixed(1) + " ms "),
      ...flags(lane));
    const strip = box.querySelector(".strip");
    strip.replaceChildren(...lane.items.map((p, i) => productCard(p,
      h("span", {class: "score"}, (i + 1) + ". " + (p.score === null ? "no score" : "score " + p.score.toFixed(3))))));
    strip.dataset.session = sessionId;
    strip.dataset.events = String(trail.length);
  }

  function renderTrail() {
    const ol = $("trail");
    if (!trail.length) { ol.replaceChildren(h("li", {class: "muted"}, "No clicks yet.")); return; }
    ol.replaceChildren(...trail.map((p) => h("li", {}, h("button", {type: "button", class: "link",
      on: {click: () => openProduct(p.id)}}, label(p)))));
  }

  function nextFrame() {
    return new Promise((resolve) => requestAnimationFrame(() => resolve()));
  }

  async function openProduct(id) {
    performance.clearMarks("click-start");
    performance.mark("click-start");
    const user = $("user").value.trim();
    const body = {product_id: String(id)};
    if (user) body.user_id = user;
    let r;
    try {
      r = await fetch("/ui/api/sessions/" + encodeURIComponent(sessionId) + "/click", {
        method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
    } catch (err) { status("The server did not answer: " + err, "error"); return; }
    const data = await r.json();
    if (!r.ok) {
      const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      status(detail, "error");
      return;
    }
    status(null);
    trail.push(data.product);
    const p = data.product;
    $("product-box").hidden = false;
    $("product").replaceChildren(h("h3", {id: "product-title"}, label(p)), h("p", {class: "pmeta"}, details(p) || ("#" + p.id)));
    data.lanes.forEach(renderLane);
    renderTrail();
    await nextFrame();
    performance.mark("strips-done");
    performance.measure("click-to-strips", "click-start", "strips-done");
    document.body.dataset.clicks = String(trail.length);
  }

  async function reset() {
    const r = await fetch("/ui/api/sessions/" + encodeURIComponent(sessionId) + "/reset", {method: "POST"});
    const data = await r.json();
    if (!r.ok) { status(data.detail || "Reset failed", "error"); return; }
    sessionId = data.session_id;
    $("sid").textContent = sessionId;
    trail.length = 0;
    renderTrail();
    $("product-box").hidden = true;
    document.querySelectorAll(".lane .strip").forEach((s) => s.replaceChildren());
    document.querySelectorAll(".lane .meta").forEach((m) => m.replaceChildren("Open a product to see this model's recommendations."));
    status("New session " + sessionId + ".", null);
  }

  $("sid").textContent = sessionId;
  $("search").addEventListener("submit", search);
  $("reset").addEventListener("click", reset);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "/" && document.activeElement.tagName !== "INPUT") { ev.preventDefault(); $("q").focus(); }
  });
  $("results-h").textContent = "Popular products";
  showResults(boot.popular, "The catalogue is empty.");
  const wanted = new URLSearchParams(location.search).get("product");
  if (wanted) openProduct(wanted);
})();
