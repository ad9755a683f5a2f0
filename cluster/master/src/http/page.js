// Shows the master's /state as tables, refreshed every few seconds. Every value goes into the
// page as text (names come from frameworks and agents), never as markup.
"use strict";

const REFRESH_MS = 5000;

// "2 cpus, 1024 MiB"
function amount(r) {
  return r ? `${+r.cpus.toFixed(3)} cpus, ${r.mem_mb} MiB` : "";
}

// "disk:100; ports:[31000-32000]; gpus:2" (empty when there is none)
function extras(e) {
  if (!e) return "";
  const parts = [];
  if (e.disk_mb) parts.push(`disk:${e.disk_mb}`);
  if (e.ports) parts.push(`ports:[${e.ports}]`);
  for (const [name, value] of Object.entries(e.scalars)) parts.push(`${name}:${value}`);
  return parts.join("; ");
}

// "2 cpus, 1024 MiB; disk:100; ports:[31000-32000]"
function withExtras(r, e) {
  const more = extras(e);
  return more ? `${amount(r)}; ${more}` : amount(r);
}

// "rack:r1; zone:z1"
function attributes(a) {
  return Object.entries(a).map(([name, value]) => `${name}:${value}`).join("; ");
}

// "analytics: 1 cpus, 512 MiB (static)", one per reservation
function reservations(list) {
  return list.map(r => `${r.role}: ${amount(r.resources)} (${r.dynamic ? "dynamic" : "static"})`)
    .join("; ");
}

// Fills table `id` with `header` and one row per item, `row(item)` giving its cells.
function fill(id, header, items, row) {
  const table = document.getElementById(id);
  table.replaceChildren();
  const head = table.insertRow();
  for (const name of header) {
    const th = document.createElement("th");
    th.textContent = name;
    head.appendChild(th);
  }
  if (items.length === 0) {
    const cell = table.insertRow().insertCell();
    cell.colSpan = header.length;
    cell.textContent = "none";
    return;
  }
  for (const item of items) {
    const tr = table.insertRow();
    for (const value of row(item)) {
      const cell = tr.insertCell();
      cell.textContent = String(value);
      if (typeof value === "number") cell.className = "number";
    }
  }
}

function show(state) {
  const since = new Date(state.start_time * 1000).toLocaleString();
  document.getElementById("summary").textContent =
    `Version ${state.version}, id ${state.id}, started ${since}; allocator: ${state.allocator}; ` +
    `agents: ${state.agents.length}, frameworks: ${state.frameworks.length}.`;
  fill("agents",
    ["Id", "Hostname", "Address", "Attributes", "Resources", "Reservations", "Allocated",
      "Offered"],
    state.agents, a => [a.id, a.hostname, a.address, attributes(a.attributes),
      withExtras(a.resources, a.extras), reservations(a.reservations), amount(a.allocated),
      amount(a.offered)]);
  fill("frameworks",
    ["Name", "Id", "User", "Roles", "Connected", "Suppressed", "Allocated", "Offered",
      "Dominant share"],
    state.frameworks, f => [f.name, f.id, f.user, f.roles.join(", "), f.connected ? "yes" : "no",
      f.suppressed ? "yes" : f.suppressed_roles.length ? `in ${f.suppressed_roles.join(", ")}` : "no",
      amount(f.allocated), amount(f.offered),
      +f.dominant_share.toFixed(3)]);
  fill("roles", ["Role", "Weight", "Guarantee", "Limit", "Frameworks", "Allocated", "Offered"],
    state.roles, r => [r.name, r.weight, amount(r.quota.guarantee),
      r.quota.limit ? amount(r.quota.limit) : "none", r.frameworks.length, amount(r.allocated),
      amount(r.offered)]);
  const names = new Map(state.frameworks.map(f => [f.id, f.name]));
  fill("executors", ["Executor", "Framework", "Agent", "State", "Resources", "Message"],
    state.executors, e => [e.executor_id, names.get(e.framework_id) || e.framework_id,
      e.agent_id, e.state, withExtras(e.resources, e.extras), e.message]);
  fill("offers", ["Offer", "Framework", "Role", "Agent", "Hostname", "Reserved for", "Resources"],
    state.offers, o => [o.id, names.get(o.framework_id) || o.framework_id, o.allocation_role,
      o.agent_id, o.hostname, o.reservation_role || "", withExtras(o.resources, o.extras)]);
  document.getElementById("updated").textContent =
    `Updated ${new Date().toLocaleTimeString()}.`;
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const response = await fetch("/state", { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
    show(await response.json());
    error.textContent = "";
  } catch (e) {
    error.textContent = `Cannot read the master's state: ${e.message}`;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
