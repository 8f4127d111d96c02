// plait console: a workflow's graph, laid out by dagre and drawn as SVG.
//
// Every element `.graph[data-graph]` names a <script type="application/json"> holding
// {nodes: [{id, label?, kind?, ref, phase?, items?, counts?, children?}], edges: [[from, to]]}
// (label: the id less its parent's; kind: task; an edge joins two nodes by their indices).
// Each node is a focusable button whose accessible name says its name, kind and phase; its
// phase is written in it as a word and a symbol, and its outline's shape repeats it (dashed
// while waiting, thick while running, double when it failed). A sub-workflow or dynamic node
// has an "expand" button that draws its nodes in a section of their own below.
//
// On an execution's page the element also carries data-events (the API's event stream less
// map items' events, after the events the page was rendered from; execution_live.py), data-panel (where a node's panel is loaded from) and
// data-counts (a map node's counts per phase): one EventSource keeps every phase live.
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const SYMBOL = {succeeded: "✓", failed: "✗", timed_out: "✗", running: "▶", queued: "…",
    waiting_for_resources: "…", not_started: "…", aborted: "■", aborting: "■", skipped: "■"};
  const NODE_W = 168, NODE_H = 58;
  const nodes = new Map();   // node id -> {data, elements: [g], graph}
  let panel = null;          // {id, url} of the node whose panel is open

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  function countsText(counts) {
    return Object.entries(counts || {}).filter(([, n]) => n > 0)
      .map(([phase, n]) => `${SYMBOL[phase] ? SYMBOL[phase] + " " : ""}${n.toLocaleString("en")} ${phase.replace(/_/g, " ")}`).join(", ");
  }

  function shownLabel(node) {
    return node.label.length > 22 ? node.label.slice(0, 21) + "…" : node.label;
  }

  function phaseText(node) {
    return node.phase ? `${SYMBOL[node.phase] || ""} ${node.phase.replace(/_/g, " ")}` : (node.kind === "map" ? "map" : node.kind);
  }

  function itemsText(node) {
    return countsText(node.counts) || `${(node.items || 0).toLocaleString("en")} items`;
  }

  function describe(node) {
    // the visible text first, in order (a spoken name matches what is seen), then what it is
    const kind = {map: "map over task", workflow: "sub-workflow", dynamic: "dynamic task"}[node.kind] || "task";
    const items = node.kind === "map" ? ` ${itemsText(node)}` : "";
    return `${shownLabel(node)} ${phaseText(node)}${items}, ${kind} ${node.ref || ""}`.trim();
  }

  function paint(g, node) {
    g.setAttribute("class", `gnode kind-${node.kind} ${node.phase ? "phase-" + node.phase : ""}`);
    g.setAttribute("aria-label", describe(node));
    // each line starts with a space (not drawn): the node's text reads as its words, as its name does
    g.querySelector(".gphase").textContent = " " + phaseText(node);
    const counts = g.querySelector(".gcounts");
    if (counts) counts.textContent = " " + itemsText(node);
  }

  function normalise(graph, prefix) {
    // the page leaves out what a node has by default (see graph_of): a label, kind "task"
    for (const n of graph.nodes) {
      n.label = n.label || n.id.slice(prefix.length);
      n.kind = n.kind || "task";
      if (n.children) normalise(n.children, n.id + ".");
    }
    graph.edges = graph.edges.map(([a, b]) => [graph.nodes[a].id, graph.nodes[b].id]);
    return graph;
  }

  // dagre runs in a worker (graph-layout.js): a thousand nodes take it most of a second, which
  // on the page's own thread would freeze it; the SVG is then built a slice of nodes at a time.
  const SLICE = 150;
  let worker = null, asked = 0;
  const waiting = new Map();

  function layout(graph) {
    if (!worker) {
      worker = new Worker("/static/graph-layout.js");
      worker.onmessage = (ev) => { waiting.get(ev.data.ask)(ev.data); waiting.delete(ev.data.ask); };
    }
    const ask = ++asked;
    worker.postMessage({ask, nodes: graph.nodes.map((n) => ({id: n.id, width: NODE_W, height: n.kind === "map" ? NODE_H + 16 : NODE_H})),
      edges: graph.edges});
    return new Promise((resolve) => waiting.set(ask, resolve));
  }

  const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

  function remember(graph) {
    for (const n of graph.nodes) {
      if (!nodes.has(n.id)) nodes.set(n.id, {data: n, elements: []});
      if (n.children) remember(n.children);
    }
  }

  async function draw(container, graph, root) {
    remember(graph);
    const placed = await layout(graph);
    const svg = el("svg", {width: Math.ceil(placed.width), height: Math.ceil(placed.height),
      role: "group", "aria-label": container.dataset.label || "Graph", class: "gsvg"});
    const edges = el("g", {class: "gedges", "aria-hidden": "true"}, svg);
    for (const pts of placed.edges) el("path", {d: "M" + pts.map((p) => `${p.x},${p.y}`).join("L")}, edges);
    for (let i = 0; i < graph.nodes.length; i++) {
      if (i > 0 && i % SLICE === 0) await nextTask();
      const n = nodes.get(graph.nodes[i].id).data;
      const box = placed.nodes[i];
      const x = box.x - box.width / 2, y = box.y - box.height / 2;
      const group = el("g", {transform: `translate(${x},${y})`, tabindex: "0", role: "button", "data-node": n.id}, svg);
      el("rect", {width: box.width, height: box.height, rx: n.kind === "map" ? 2 : 8, class: "gbox"}, group);
      if (n.kind === "map") el("rect", {x: 4, y: 4, width: box.width - 8, height: box.height - 8, rx: 2, class: "gstack"}, group);
      const name = el("text", {x: 10, y: 20, class: "gname"}, group);
      name.textContent = shownLabel(n);
      el("text", {x: 10, y: 40, class: "gphase"}, group);
      if (n.kind === "map") el("text", {x: 10, y: 58, class: "gcounts"}, group);
      paint(group, n);
      nodes.get(n.id).elements = nodes.get(n.id).elements.filter((e) => e.isConnected).concat([group]);
      group.addEventListener("click", () => openPanel(root, n.id));
      group.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openPanel(root, n.id); }
      });
      if (n.children) expander(container, svg, n, x, y, box, root);
    }
    container.replaceChildren(svg);
    for (const entry of nodes.values()) entry.elements = entry.elements.filter((e) => e.isConnected);
    container.setAttribute("data-ready", "true");
  }

  function expander(container, svg, node, x, y, box, root) {
    // beside the node's button, not in it: a button may not hold another
    const button = el("g", {transform: `translate(${x + box.width - 26},${y + 4})`, tabindex: "0", role: "button",
      "aria-expanded": "false", "aria-label": `Expand ${node.label}`, class: "gexpand"}, svg);
    el("rect", {width: 22, height: 20, rx: 4}, button);
    const sign = el("text", {x: 11, y: 15, "text-anchor": "middle"}, button);
    sign.textContent = "+";
    const toggle = (ev) => {
      ev.stopPropagation();
      const id = "inside-" + node.id.replace(/[^A-Za-z0-9_-]/g, "_");
      let section = document.getElementById(id);
      if (section) {
        section.remove();
        button.setAttribute("aria-expanded", "false");
        sign.textContent = "+";
        return;
      }
      section = document.createElement("section");
      section.id = id;
      section.className = "inside";
      const heading = document.createElement("h3");
      heading.textContent = `Inside ${node.kind === "dynamic" ? "dynamic node" : "sub-workflow"} ${node.id}`;
      const inner = document.createElement("div");
      inner.className = "graph";
      inner.dataset.label = heading.textContent;
      section.append(heading, inner);
      container.after(section);
      button.setAttribute("aria-expanded", "true");
      sign.textContent = "−";
      if (node.children.nodes.length === 0) inner.textContent = "It has not made its graph yet: it does when its task has run.";
      else draw(inner, node.children, root);
      node.redraw = () => { if (document.getElementById(id)) draw(inner, node.children, root); };
    };
    button.addEventListener("click", toggle);
    button.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); toggle(ev); } });
  }

  function openPanel(root, id) {
    const url = root.dataset.panel;
    if (!url || !window.htmx) return;
    panel = {id, url: url + encodeURIComponent(id)};
    for (const {elements} of nodes.values()) for (const e of elements) e.classList.remove("selected");
    for (const e of (nodes.get(id) || {elements: []}).elements) e.classList.add("selected");
    htmx.ajax("GET", panel.url, {target: "#node-panel", swap: "innerHTML"}).then(() => {
      const heading = document.querySelector("#node-panel h2");
      if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
    });
  }

  function update(id, change) {
    const entry = nodes.get(id);
    if (!entry) return false;
    Object.assign(entry.data, change);
    for (const g of entry.elements) paint(g, entry.data);
    return true;
  }

  function addChild(id, phase) {
    // a node inside a dynamic node, known only once it runs: the deepest known parent holds it
    const parts = id.split(".");
    for (let i = parts.length - 1; i > 0; i--) {
      const parent = nodes.get(parts.slice(0, i).join("."));
      if (parent && parent.data.children) {
        const child = {id, label: parts.slice(i).join("."), kind: "task", ref: "", phase};
        parent.data.children.nodes.push(child);
        nodes.set(id, {data: child, elements: []});
        if (parent.data.redraw) parent.data.redraw();
        return;
      }
    }
  }

  function throttled(fn, ms) {
    let timer = null;
    return () => { if (!timer) timer = setTimeout(() => { timer = null; fn(); }, ms); };
  }

  function follow(root) {
    const source = new EventSource(root.dataset.events);
    const maps = new Map();  // map node id -> throttled refresh of its counts
    const refreshPanel = throttled(() => {
      if (panel) htmx.ajax("GET", panel.url, {target: "#node-panel", swap: "innerHTML"});
    }, 1000);
    const counts = (id) => {
      if (!maps.has(id)) {
        maps.set(id, throttled(async () => {
          const reply = await fetch(root.dataset.counts + encodeURIComponent(id), {headers: {Accept: "application/json"}});
          if (reply.ok) update(id, {counts: await reply.json()});
        }, 2000));
      }
      maps.get(id)();
    };
    const on = (kind, handler) => source.addEventListener(kind, (ev) => handler(JSON.parse(ev.data)));
    on("execution", (e) => {
      const badge = document.getElementById("execution-phase");
      if (badge) { badge.className = `phase phase-${e.phase}`; badge.textContent = e.phase; }
      if (["succeeded", "failed", "timed_out", "aborted"].includes(e.phase)) document.body.dispatchEvent(new CustomEvent("plait:ended"));
    });
    on("node", (e) => {
      if (!update(e.entity, {phase: e.phase, ...(e.data.items !== undefined ? {items: e.data.items} : {})})) addChild(e.entity, e.phase);
      if (nodes.get(e.entity) && nodes.get(e.entity).data.kind === "map") counts(e.entity);
      if (panel && panel.id === e.entity) refreshPanel();
    });
    on("attempt", (e) => { if (panel && panel.id === e.data.node) refreshPanel(); });
    on("items", (e) => counts(e.node));  // a map's items moved (execution_live.py)
    on("end", () => { source.close(); document.body.dispatchEvent(new CustomEvent("plait:ended")); });
  }

  async function start() {
    for (const root of document.querySelectorAll(".graph[data-graph]")) {
      const graph = normalise(JSON.parse(document.getElementById(root.dataset.graph).textContent), "");
      remember(graph);
      if (root.dataset.events) follow(root);
      const started = performance.now();
      await draw(root, graph, root);
      root.dataset.laidOutMs = String(Math.round(performance.now() - started));
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
