// recsys feed viewer: plain JavaScript over the public API (no build step, nothing from outside).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, user: null, blocked: new Set(), posts: new Map(), seq: 0 };

// The read key (RECSYS_READ_API_KEY), given once as #key=... in the page's URL (a fragment never
// reaches the server's logs) and kept for the tab's session; sent as X-API-Key on every API call.
const READ_KEY = (() => {
  const m = location.hash.match(/key=([^&]+)/);
  if (m) sessionStorage.setItem("recsys-read-key", decodeURIComponent(m[1]));
  return sessionStorage.getItem("recsys-read-key");
})();

async function api(path, body) {
  const headers = READ_KEY ? { "X-API-Key": READ_KEY } : {};
  const opts = body === undefined ? { headers } : { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { const j = await r.json(); if (j.detail) msg = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
    const err = new Error(msg); err.status = r.status; throw err;
  }
  return r.json();
}

// optional endpoints (trends, profile): null when absent or failing, so their panels stay hidden
async function optional(path) {
  try { return await api(path); } catch (e) { return null; }
}

async function posts(ids) {
  const want = [...new Set(ids.filter((i) => i !== null && i !== undefined && !state.posts.has(i)))];
  for (let s = 0; s < want.length; s += 500) {
    const j = await api("/v1/posts:lookup", { post_ids: want.slice(s, s + 500) });
    for (const p of j.posts) state.posts.set(p.post_id, p);
  }
  return ids.map((i) => state.posts.get(i) || { post_id: i });
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function picture(p) { return p.image_url || p.poster_url || null; }

function age(s) {
  if (s === null || s === undefined) return "";
  const a = Math.abs(s), sign = s < 0 ? "in " : "";
  const [v, u] = a < 3600 ? [a / 60, "min"] : a < 86400 ? [a / 3600, "h"] : a < 86400 * 365 ? [a / 86400, "d"] : [a / 86400 / 365, "y"];
  return sign + Math.round(v) + " " + u + (s < 0 ? "" : " ago");
}

function thumb(p, cls) {
  const src = picture(p);
  if (src) {
    const img = el("img", { class: cls, src, alt: p.text ? p.text.slice(0, 80) : "post " + p.post_id, loading: "eager" });
    return p.video_url ? el("div", { class: "thumbwrap" }, img, el("span", { class: "video-mark" }, "▶ video")) : el("div", { class: "thumbwrap" }, img);
  }
  return el("div", { class: cls + " none" }, p.text ? "text post" : "post " + p.post_id);
}

function mini(p) {
  const src = p && picture(p);
  return src ? el("img", { src, alt: "", class: "mini" }) : el("div", { class: "mini" });
}

function card(item, p, opts = {}) {
  const author = p.author_id === null || p.author_id === undefined ? null
    : el("button", { class: "author", type: "button", title: "block this author", onclick: (ev) => { ev.stopPropagation(); block(p.author_id); } }, "@" + p.author_id);
  const body = el("div", { class: "body" },
    el("div", { class: "meta" }, author, el("span", { class: "age", title: p.created_at || "" }, age(p.age_seconds)),
      item.score !== undefined ? el("span", { class: "score", title: "score" }, item.score.toFixed(3)) : null),
    el("p", { class: "text" + (p.text ? "" : " empty") }, p.text || "(no text)"));
  if (item.why !== undefined && item.why !== null) {
    const w = state.posts.get(item.why) || { post_id: item.why };
    const mod = item.why_modality || "content";
    body.append(el("div", { class: "why", title: "closest post of the history (cosine " + (item.why_similarity ?? 0).toFixed(2) + "); what weighed most: " + mod },
      mini(w),
      el("span", { class: "because" }, "because of: " + (w.text || "post " + w.post_id)),
      el("span", { class: "badge " + mod }, mod)));
  }
  const c = el("article", { class: "card", "data-post-id": String(p.post_id), tabindex: "0" }, thumb(p, "thumb"), body);
  if (!opts.static) {
    c.addEventListener("click", () => showSimilar(p.post_id));
    c.addEventListener("keydown", (ev) => { if (ev.key === "Enter") showSimilar(p.post_id); });
  }
  return c;
}

function filters() {
  const f = { exclude_seen: $("f-seen").checked };
  if (state.blocked.size) f.exclude_authors = [...state.blocked];
  if ($("f-age").value) {
    f.max_age_seconds = Number($("f-age").value);
    if (state.info && state.info.newest_post_at) f.now = state.info.newest_post_at;  // historical data: age before its newest post
  }
  if ($("f-cap").value) f.author_cap = Number($("f-cap").value);
  return f;
}

function status(msg, error = false) { $("status").textContent = msg; $("status").classList.toggle("error", error); }

async function loadFeed() {
  const raw = $("user").value.trim();
  if (!raw) { status("type a user id", true); return; }
  const user = /^-?\d+$/.test(raw) ? Number(raw) : raw;  // integer or string ids, as the deployment has them
  const seq = ++state.seq, t0 = performance.now();
  state.user = user;
  status("loading…");
  try {
    const [rec, hist] = await Promise.all([
      api("/v1/recommendations", { user_id: user, k: Number($("k").value), filters: filters() }),
      api("/v1/users/" + encodeURIComponent(user) + "/history?limit=30"),
    ]);
    const ids = rec.items.map((i) => i.post_id), whys = rec.items.map((i) => i.why), h = hist.history.slice().reverse();
    await posts([...ids, ...whys, ...h]);
    if (seq !== state.seq) return;  // a newer request won
    const feed = $("feed");
    feed.replaceChildren(...rec.items.map((it) => card(it, state.posts.get(it.post_id) || { post_id: it.post_id })));
    $("feed-title").hidden = false;
    $("feed-title").textContent = "Feed for user " + user + (rec.fallback ? " (not personalised: " + rec.fallback_reason + ")" : "");
    $("history").replaceChildren(...h.map((pid) => { const p = state.posts.get(pid) || { post_id: pid }; return el("div", { class: "hist", "data-post-id": String(pid) }, mini(p), el("span", {}, p.text || "post " + pid)); }));
    $("history-panel").hidden = h.length === 0;
    document.body.dataset.feedLoadedMs = String(Math.round(performance.now() - t0));
    status(rec.items.length + " posts · " + (hist.known ? hist.history.length + " history posts shown" : "unknown user") + " · bundle " + rec.bundle_version + " · " + Math.round(performance.now() - t0) + " ms");
    history.replaceState(null, "", "#user=" + encodeURIComponent(user));
    loadProfile(user, seq);
  } catch (e) {
    if (seq === state.seq) status(e.message, true);
  }
}

async function loadProfile(user, seq) {
  const prof = await optional("/v1/users/" + encodeURIComponent(user) + "/profile");
  if (seq !== state.seq) return;
  const box = $("profile");
  if (!prof || !Array.isArray(prof.clusters) || !prof.clusters.length) { $("profile-panel").hidden = true; return; }
  await posts(prof.clusters.flatMap((c) => (c.example_post_ids || []).slice(0, 4))).catch(() => null);
  const maxW = Math.max(1e-9, ...prof.clusters.map((c) => Number(c.weight) || 0));
  const kids = prof.clusters.map((c) => el("div", { class: "cluster" },
    el("div", { class: "row" }, el("span", {}, String(c.label ?? "cluster " + c.cluster_id)), el("span", { class: "muted" }, (Number(c.weight) || 0).toFixed(2))),
    el("div", { class: "barline" }, el("i", { style: "width:" + (100 * (Number(c.weight) || 0) / maxW).toFixed(1) + "%" })),
    el("div", { class: "thumbs" }, ...(c.example_post_ids || []).slice(0, 4).map((pid) => mini(state.posts.get(pid))))));
  if (prof.preferred_modality && prof.modality === undefined) prof.modality = prof.preferred_modality.shares || prof.preferred_modality.modality;
  if (prof.modality !== undefined && prof.modality !== null) {
    const m = typeof prof.modality === "object"
      ? Object.entries(prof.modality).map(([k, v]) => k + " " + (typeof v === "number" ? v.toFixed(2) : String(v))).join(" · ")
      : String(prof.modality);
    kids.push(el("p", { class: "muted" }, "modality: " + m));
  }
  box.replaceChildren(...kids);
  $("profile-panel").hidden = false;
}

function seriesValues(s) {
  if (s && !Array.isArray(s) && Array.isArray(s.values)) s = s.values;  // the API's sparkline {step_hours, values}
  if (!Array.isArray(s)) return [];
  return s.map((x) => typeof x === "number" ? x : Array.isArray(x) ? Number(x[x.length - 1]) : x && typeof x === "object" ? Number(x.count ?? x.value ?? x.score ?? x.n ?? 0) : 0).filter(Number.isFinite);
}

function spark(values) {
  if (values.length < 2) return null;
  const max = Math.max(...values), min = Math.min(...values), span = max - min || 1;
  const pts = values.map((v, i) => (100 * i / (values.length - 1)).toFixed(1) + "," + (26 - 24 * (v - min) / span).toFixed(1)).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 100 28"); svg.setAttribute("preserveAspectRatio", "none");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts); line.setAttribute("fill", "none"); line.setAttribute("stroke", "#2856d8"); line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return svg;
}

async function loadTrends() {
  const t = await optional("/v1/trends");
  const list = t && (Array.isArray(t.items) ? t.items : t.clusters);  // GET /v1/trends answers `items`
  if (!Array.isArray(list) || !list.length) { $("trends-panel").hidden = true; return; }
  for (const c of list) { c.post_ids = c.representative_post_ids || c.post_ids; c.series = c.sparkline ?? c.series; }
  await posts(list.flatMap((c) => (c.post_ids || []).slice(0, 4))).catch(() => null);
  $("trends").replaceChildren(...list.slice(0, 12).map((c) => el("div", { class: "cluster" },
    el("div", { class: "row" }, el("span", {}, String(c.label ?? "cluster " + c.cluster_id)), el("span", { class: "muted" }, Number(c.score ?? 0).toFixed(2))),
    spark(seriesValues(c.series)),
    el("div", { class: "thumbs" }, ...(c.post_ids || []).slice(0, 4).map((pid) => mini(state.posts.get(pid)))))));
  $("trends-panel").hidden = false;
}

async function showSimilar(pid) {
  const panel = $("similar-panel");
  panel.hidden = false;
  $("similar").replaceChildren();
  $("similar-origin").replaceChildren(card({}, state.posts.get(pid) || { post_id: pid }, { static: true }));
  try {
    const j = await api("/v1/posts/" + encodeURIComponent(pid) + "/similar?k=12");
    await posts(j.items.map((i) => i.post_id));
    $("similar").replaceChildren(...j.items.map((it) => card({ score: it.score }, state.posts.get(it.post_id) || { post_id: it.post_id })));
  } catch (e) {
    $("similar").replaceChildren(el("p", { class: "status error" }, e.message));
  }
}

function block(author) {
  state.blocked.add(author); renderBlocked(); loadFeed();
}

function renderBlocked() {
  $("blocked").replaceChildren(...[...state.blocked].map((a) => el("button", { class: "chip", type: "button", title: "unblock",
    onclick: () => { state.blocked.delete(a); renderBlocked(); loadFeed(); } }, "@" + a + " ×")));
}

async function init() {
  $("pick").addEventListener("submit", (ev) => { ev.preventDefault(); loadFeed(); });
  for (const id of ["f-seen", "f-age", "f-cap", "k"]) $(id).addEventListener("change", () => { if (state.user !== null) loadFeed(); });
  $("close-similar").addEventListener("click", () => { $("similar-panel").hidden = true; });
  $("similar-panel").addEventListener("click", (ev) => { if (ev.target === $("similar-panel")) $("similar-panel").hidden = true; });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") $("similar-panel").hidden = true; });
  try {
    state.info = await api("/v1/info");
    $("bundle").textContent = "bundle " + state.info.bundle_version + " · " + state.info.n_posts.toLocaleString() + " posts" + (state.info.media ? "" : " · no post text/media (bundle names no dataset)");
    $("users").replaceChildren(...state.info.users.map((u) => el("option", { value: String(u.user_id) }, u.history_len + " history posts")));
    const m = location.hash.match(/user=([^&]+)/);
    const first = m ? decodeURIComponent(m[1]) : state.info.users.length ? String(state.info.users[0].user_id) : "";
    if (first) { $("user").value = first; loadFeed(); }
  } catch (e) {
    status("cannot reach the API: " + e.message, true);
  }
  loadTrends();
}

init();
