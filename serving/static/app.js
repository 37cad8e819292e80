// The dashboard: signs in with a token, then shows what the token's scope allows — the ranking,
// the village map, the alerts, the model status and one entity's explanation and history.

import { ApiFailure, getJson, postJson, session } from "./api.js";
import { signedBars, timeLine } from "./charts.js";
import { LEVELS, STRINGS } from "./i18n.js";
import { drawMap } from "./map.js";

const PAGE_SIZE = 50;
const $ = (selector) => document.querySelector(selector);

const state = {
  lang: sessionStorage.getItem("fengqiao.lang") || "zh",
  entity: "village",
  filters: { county: "", town: "", level: "" },
  offset: 0,
  models: null,
  modelDetails: {},
  map: null,
  mapView: null,
  ranking: null,
  rankingError: null,
  rankingRequest: 0,
  alerts: null,
  plan: null,
  detail: null,
  detailRequest: 0,
  explainBy: "probability",
  marked: new Set(),
};

const t = (key, ...args) => {
  const value = STRINGS[state.lang][key];
  return typeof value === "function" ? value(...args) : value;
};
const percent = (p) => `${(100 * p).toFixed(1)}%`;
// Signed percentage points; a change that rounds to nothing is shown unsigned.
const points = (d) => {
  const shown = Math.abs(100 * d).toFixed(1);
  return Number(shown) === 0 ? shown : `${d > 0 ? "+" : "−"}${shown}`;
};
const levelName = (level) => t("levels")[level] ?? level;
const dateTime = (text) => (text ? new Date(text).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB") : t("notAvailable"));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

const levelChip = (level) => element("span", { class: `chip lv-${level}`, "data-level": level, text: levelName(level) });
const entityLink = (entity, id, text) => element("a", { href: `#${entity}/${encodeURIComponent(id)}`, text });

// A performance mark once the frame that shows `name` has been drawn (read by the benchmark).
function markRendered(name) {
  if (state.marked.has(name)) return;
  state.marked.add(name);
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark(name)));
}

function notify(message) {
  const notice = $("#notice");
  notice.textContent = message ?? "";
  notice.hidden = !message;
}

// The page's answer to a failed call: sign out on 401, say so otherwise.
function failed(error) {
  if (!(error instanceof ApiFailure)) throw error;
  if (error.status === 401) {
    signOut(t("tokenInvalid"));
    return t("tokenInvalid");
  }
  const message = error.status === 403 ? t("forbidden") : error.status === 429 ? t("rateLimited") : t("failed");
  if (error.status !== 403) notify(message);
  return message;
}

function applyTexts() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
}

// ---- sign-in ----

function signOut(message) {
  session.signOut();
  Object.assign(state, { models: null, map: null, mapView: null, ranking: null, alerts: null, plan: null, detail: null,
    entity: "village", filters: { county: "", town: "", level: "" }, offset: 0 });
  $("#dashboard-view").hidden = true;
  $("#sign-out").hidden = true;
  $("#sign-in-view").hidden = false;
  notify(message);
}

async function start() {
  $("#sign-in-view").hidden = true;
  $("#dashboard-view").hidden = false;
  $("#sign-out").hidden = false;
  notify(null);
  const ranking = loadRanking();
  const map = getJson("/v1/map/villages").then((answer) => { state.map = answer; }, (error) => {
    state.map = { items: [], total: 0, unavailable: error.status === 422 };
    if (error.status !== 422) failed(error);
  });
  try {
    state.models = (await getJson("/v1/models")).models;
  } catch (error) {
    failed(error);
    return;
  }
  renderStatus();
  const alerts = loadAlerts();
  await map;
  if (!session.token) return;
  renderFilters();
  renderMap();
  renderStatus();
  await Promise.all([ranking, alerts]);
  openFromHash();
  loadPlan(); // after the first view: a plan takes the server a second or more to make (then it is kept)
}

// ---- model status ----

function renderStatus() {
  const list = $("#model-status");
  list.replaceChildren();
  for (const model of state.models ?? []) {
    const kind = model.entity === "village" ? t("villages") : t("projects");
    const drift = model.last_drift_check ? dateTime(model.last_drift_check) : t("notAvailable");
    const rows = [
      [t("modelVersion"), `${model.version}`], [t("snapshot"), model.snapshot], [t("scoredAt"), dateTime(model.loaded_at)],
      [t("trainedAt"), dateTime(model.trained_at)], [t("driftCheck"), drift],
    ];
    const block = element("div", { class: "model", "data-entity": model.entity }, element("h3", { text: kind }));
    for (const [term, value] of rows) block.append(element("dt", { text: term }), element("dd", { text: value }));
    block.append(element("p", { class: "help", text: t("horizon", model.horizon_days) }));
    list.append(block);
  }
  if (state.map && !state.map.unavailable) {
    const counties = new Set(state.map.items.map((v) => v.county_id));
    $("#scope").textContent = t("visible", counties.size, state.map.total);
  }
}

// ---- filters ----

function option(value, text, selected) {
  const node = element("option", { value, text });
  node.selected = value === selected;
  return node;
}

function renderFilters() {
  const villages = state.map?.items ?? [];
  const counties = new Map(), towns = new Map();
  for (const v of villages) {
    if (v.county_id) counties.set(v.county_id, v.county_name ?? v.county_id);
    if (v.town_id && (!state.filters.county || v.county_id === state.filters.county)) towns.set(v.town_id, v.town_name ?? v.town_id);
  }
  const byCode = (a, b) => a[0].localeCompare(b[0]);
  $("#filter-county").replaceChildren(option("", t("all"), state.filters.county),
    ...[...counties].sort(byCode).map(([id, name]) => option(id, name, state.filters.county)));
  $("#filter-town").replaceChildren(option("", t("all"), state.filters.town),
    ...[...towns].sort(byCode).map(([id, name]) => option(id, name, state.filters.town)));
  $("#filter-level").replaceChildren(option("", t("all"), state.filters.level),
    ...LEVELS.map((level) => option(level, levelName(level), state.filters.level)));
  const served = new Set((state.models ?? []).map((m) => m.entity));
  for (const [button, entity] of [["#show-villages", "village"], ["#show-projects", "project"]]) {
    $(button).setAttribute("aria-pressed", String(state.entity === entity));
    $(button).hidden = !served.has(entity);
  }
}

function setFilter(name, value) {
  state.filters[name] = value;
  if (name === "county") state.filters.town = "";
  state.offset = 0;
  renderFilters();
  showOnMap();
  loadRanking();
}

// ---- ranking ----

async function loadRanking() {
  const request = ++state.rankingRequest;
  const { county, town, level } = state.filters;
  try {
    const answer = await getJson(`/v1/rankings/${state.entity}`, { county, town, level, limit: PAGE_SIZE, offset: state.offset });
    if (request !== state.rankingRequest) return;
    Object.assign(state, { ranking: answer, rankingError: null });
  } catch (error) {
    if (request !== state.rankingRequest) return;
    Object.assign(state, { ranking: null, rankingError: failed(error) });
  }
  if (session.token) renderRanking();
}

function renderRanking() {
  const body = $("#ranking tbody");
  const answer = state.ranking;
  body.replaceChildren();
  if (!answer) {
    body.append(element("tr", {}, element("td", { colspan: 8, class: "help", text: state.rankingError ?? t("loading") })));
    $("#page-info").textContent = "";
    return;
  }
  for (const item of answer.items) {
    const reason = item.reasons[0];
    const change = item.change === null
      ? element("span", { class: "help", text: "—", title: t("newSinceLastWeek") })
      : element("span", { class: { "+": "up", "−": "down" }[points(item.change)[0]] ?? "", text: points(item.change) });
    body.append(element("tr", { "data-id": item.id, "data-level": item.level },
      element("td", { text: item.rank }),
      element("td", {}, entityLink(answer.entity, item.id, item.name ?? item.id)),
      element("td", { text: item.county_name ?? "" }),
      element("td", { text: item.town_name ?? "" }),
      element("td", { class: "number", text: percent(item.probability) }),
      element("td", {}, levelChip(item.level)),
      element("td", { class: "number" }, change),
      element("td", { class: "reason", text: reason ? reason[`text_${state.lang}`] : "" })));
  }
  if (!answer.items.length) body.append(element("tr", {}, element("td", { colspan: 8, class: "help", text: t("none") })));
  const from = answer.total ? answer.offset + 1 : 0;
  $("#page-info").textContent = t("pageOf", from, answer.offset + answer.items.length, answer.total);
  $("#previous").disabled = answer.offset === 0;
  $("#next").disabled = answer.offset + answer.items.length >= answer.total;
  markRendered("fengqiao-ranking-rendered");
}

// ---- map ----

function hover(village, event) {
  const tip = $("#map-tip");
  if (!village) {
    tip.hidden = true;
    return;
  }
  tip.textContent = `${village.name ?? village.id} · ${village.town_name ?? ""} · ${percent(village.probability)} ${levelName(village.level)}`;
  tip.hidden = false;
  const box = $("#map").getBoundingClientRect();
  tip.style.left = `${event.clientX - box.left + 12}px`;
  tip.style.top = `${event.clientY - box.top + 12}px`;
}

function renderMap() {
  if (!state.map || state.map.unavailable) {
    $(".map-card").hidden = true;
    return;
  }
  state.mapView = drawMap($("#map"), state.map.items, (v) => { location.hash = `village/${encodeURIComponent(v.id)}`; }, hover);
  const missing = state.map.items.length - state.mapView.placed.length;
  $("#map-note").textContent = missing ? t("noCoordinates", missing) : "";
  renderLegend();
  showOnMap();
  markRendered("fengqiao-map-rendered");
}

function renderLegend() {
  $("#legend").replaceChildren(...LEVELS.map((level) => element("li", {}, levelChip(level))));
}

function showOnMap() {
  const { county, town, level } = state.filters;
  state.mapView?.show((v) => (!county || v.county_id === county) && (!town || v.town_id === town) && (!level || v.level === level));
}

// ---- alerts ----

async function loadAlerts() {
  const latest = (state.models ?? []).map((m) => m.snapshot).sort().pop();
  if (!latest) return;
  try {
    state.alerts = await getJson("/v1/alerts", { since: latest, limit: 100 });
  } catch (error) {
    state.alerts = { error: failed(error) };
  }
  if (session.token) renderAlerts();
}

function renderAlerts() {
  const list = $("#alerts");
  const answer = state.alerts;
  list.replaceChildren();
  if (!answer) return;
  if (answer.error) {
    list.append(element("li", { class: "help", text: answer.error }));
    return;
  }
  $("#alerts-since").textContent = answer.from_snapshot ? t("alertsSince", answer.from_snapshot) : "";
  for (const item of answer.items) {
    list.append(element("li", { "data-id": item.id },
      levelChip(item.level), " ", entityLink(item.entity, item.id, item.name ?? item.id),
      element("span", { class: "help", text: ` ${item.entered_on} · ${percent(item.probability)} · ${t("now")} ${levelName(item.current_level)}` })));
  }
  if (!answer.items.length) list.append(element("li", { class: "help", text: t("noAlerts") }));
  if (answer.total > answer.items.length) list.append(element("li", { class: "help", text: t("alertsMore", answer.total - answer.items.length) }));
}

// ---- plan ----

// The plan for the token's scope with the service's default budgets (kept by the service until a reload).
async function loadPlan() {
  try {
    state.plan = await postJson("/v1/plans", {});
  } catch (error) {
    state.plan = { error: failed(error) };
  }
  if (session.token) renderPlan();
}

function renderPlan() {
  const body = $("#plan tbody");
  const answer = state.plan;
  body.replaceChildren();
  if (!answer) return;
  if (answer.error) {
    body.append(element("tr", {}, element("td", { colspan: 4, class: "help", text: answer.error })));
    return;
  }
  $("#plan-summary").textContent = t("planHelp", answer.expected_incidents_averted.toFixed(1), answer.horizon_days, answer.scope);
  const reasons = `reasons_${state.lang}`;
  for (const action of answer.actions) {
    const texts = action[reasons];
    body.append(element("tr", { "data-id": action.id, "data-kind": action.kind },
      element("td", {}, entityLink(action.entity, action.id, action.id)),
      element("td", { class: "reason", text: texts[texts.length - 1].split(/[:：]/)[0] }),
      element("td", { class: "number", text: points(-action.probability_drop) }),
      element("td", { class: "reason", text: texts.length > 1 ? texts[0] : "" })));
  }
  if (!answer.actions.length) body.append(element("tr", {}, element("td", { colspan: 4, class: "help", text: t("planEmpty") })));
  markRendered("fengqiao-plan-rendered");
}

// ---- entity panel ----

function openFromHash() {
  const match = /^#(village|project)\/(.+)$/.exec(location.hash);
  if (match && session.token) openEntity(match[1], decodeURIComponent(match[2]));
}

async function modelDetail(entity) {
  if (!state.modelDetails[entity]) state.modelDetails[entity] = await getJson(`/v1/models/${entity}`);
  return state.modelDetails[entity];
}

async function openEntity(entity, id) {
  const request = ++state.detailRequest;
  state.detail = { loading: true };
  renderPanel();
  try {
    const [data, model] = await Promise.all([getJson(`/v1/${entity}s/${encodeURIComponent(id)}`), modelDetail(entity)]);
    if (request !== state.detailRequest) return;
    state.detail = { data, thresholds: model.level_thresholds };
  } catch (error) {
    if (request !== state.detailRequest) return;
    state.detail = { error: failed(error) };
  }
  if (session.token) {
    renderPanel();
    $("#panel").scrollIntoView({ block: "nearest" });
  }
}

function explanationChart(explanation) {
  const byProbability = state.explainBy === "probability";
  const rows = explanation.groups.map((g) => ({
    label: g[`title_${state.lang}`],
    value: byProbability ? g.probability_change : g.log_odds,
    title: g.features.slice(0, 3).map((f) => `${f.feature}: ${f.value ?? "—"}`).join("\n"),
  }));
  return signedBars(rows, byProbability ? points : (v) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`);
}

function renderPanel() {
  const panel = $("#panel");
  const detail = state.detail;
  panel.replaceChildren();
  if (!detail) {
    panel.append(element("p", { class: "help", text: t("panelEmpty") }));
    return;
  }
  if (detail.loading || detail.error) {
    panel.append(element("p", { class: detail.error ? "error" : "help", text: detail.error ?? t("loading") }));
    return;
  }
  const d = detail.data;
  const where = [d.county_name, d.town_name].filter(Boolean).join(" · ");
  const close = element("button", { type: "button", class: "close", text: t("close"), onclick: () => {
    state.detail = null;
    history.replaceState(null, "", location.pathname);
    renderPanel();
  } });
  panel.append(
    element("header", {}, element("h2", { text: d.name ?? d.id }), levelChip(d.level), close),
    element("p", { class: "help", text: `${d.id} · ${where}` }),
    element("p", { class: "headline" }, element("strong", { class: "probability", text: percent(d.probability) }),
      ` ${t("rankIn", d.rank)} · ${t("change")} ${d.change === null ? "—" : points(d.change)}`),
    element("p", { class: "help", text: t("horizon", state.models?.find((m) => m.entity === d.entity)?.horizon_days ?? "?") }));

  const toggle = element("div", { class: "toggle" },
    ...[["probability", "showProbability"], ["log_odds", "showLogOdds"]].map(([by, key]) => element("button", {
      type: "button", text: t(key), "aria-pressed": String(state.explainBy === by),
      onclick: () => { state.explainBy = by; renderPanel(); } })));
  const help = state.explainBy === "probability" ? t("explanationHelp", percent(d.explanation.base_probability)) : t("logOddsHelp");
  panel.append(element("h3", { text: t("explanation") }), toggle, element("p", { class: "help", text: help }),
    element("div", { id: "explanation" }, explanationChart(d.explanation)));

  const reasons = element("ul", { id: "reasons" });
  for (const r of d.explanation.reasons) reasons.append(element("li", { class: r.log_odds >= 0 ? "up" : "down", text: r[`text_${state.lang}`] }));
  panel.append(element("h3", { text: t("reasons") }), reasons);

  panel.append(element("h3", { text: t("history") }));
  if (d.history.length) {
    const line = d.history.map((h) => ({ x: new Date(h.snapshot), y: h.probability, level: h.level }));
    const references = Object.entries(detail.thresholds ?? {}).map(([level, y]) => ({ level, y }));
    panel.append(element("div", { id: "history" }, timeLine(line, references, percent, (x) => x.toISOString().slice(0, 10))));
  } else {
    panel.append(element("p", { class: "help", text: t("noHistory") }));
  }
  if (d.entity === "project" && d.villages.length) {
    const villages = element("ul", { class: "inline" });
    for (const v of d.villages) villages.append(element("li", {}, entityLink("village", v, v)));
    panel.append(element("h3", { text: t("affectedVillages") }), villages);
  }
}

// ---- wiring ----

function renderAll() {
  applyTexts();
  if (!session.token) return;
  renderStatus();
  renderFilters();
  renderRanking();
  renderLegend();
  renderAlerts();
  renderPlan();
  renderPanel();
}

function wire() {
  $("#sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    session.signIn($("#token").value.trim());
    $("#token").value = "";
    start();
  });
  $("#sign-out").addEventListener("click", () => signOut(null));
  $("#language").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    sessionStorage.setItem("fengqiao.lang", state.lang);
    renderAll();
  });
  for (const [button, entity] of [["#show-villages", "village"], ["#show-projects", "project"]]) {
    $(button).addEventListener("click", () => {
      if (state.entity === entity) return;
      state.entity = entity;
      state.offset = 0;
      renderFilters();
      loadRanking();
    });
  }
  for (const name of ["county", "town", "level"]) {
    $(`#filter-${name}`).addEventListener("change", (event) => setFilter(name, event.target.value));
  }
  $("#previous").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadRanking(); });
  $("#next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadRanking(); });
  window.addEventListener("hashchange", openFromHash);
}

wire();
applyTexts();
if (session.token) start();
else signOut(null);
