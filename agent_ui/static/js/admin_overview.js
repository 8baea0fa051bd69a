// /admin: the configuration's check result, what is configured and the routes, from
// /api/admin/overview.

import { call, cell, start } from "./admin_api.js";

function destination(node) {
  if (!node) return "";
  if (node.assigned) return "the number's own queue";
  const [kind, target] = Object.entries(node)[0];
  return `${kind} ${target}`;
}

async function load() {
  const overview = await call("GET", "/api/admin/overview");
  document.getElementById("revision").textContent = overview.revision;
  const result = document.getElementById("check-result");
  result.dataset.valid = String(overview.valid);
  result.textContent = overview.valid
    ? "The configuration is valid."
    : `The configuration has ${overview.problems.length} problem(s):`;
  document.getElementById("check-problems").replaceChildren(
    ...overview.problems.map((problem) => {
      const item = document.createElement("li");
      item.textContent = `${problem.file}: ${problem.where}: ${problem.message}`;
      return item;
    }),
  );
  const labels = {
    users: "Users",
    workgroups: "Workgroups",
    profiles: "Routing profiles",
    accounts: "Broker accounts",
    numbers: "Numbers",
    inbound_routes: "Inbound routes",
    outbound_routes: "Outbound routes",
  };
  const counts = document.getElementById("counts");
  counts.replaceChildren();
  for (const [key, label] of Object.entries(labels)) {
    const term = document.createElement("dt");
    term.textContent = label;
    const value = document.createElement("dd");
    value.textContent = overview.counts[key] ?? 0;
    counts.append(term, value);
  }
  const inbound = overview.inbound_routes.map((route) => {
    const row = document.createElement("tr");
    row.append(cell(route.name), cell(route.type), cell(route.pattern), cell(destination(route.destination)));
    return row;
  });
  const fallback = document.createElement("tr");
  fallback.append(cell("default"), cell("—"), cell("everything else"), cell(destination(overview.default_destination)));
  document.getElementById("inbound-routes").replaceChildren(...inbound, fallback);
  document.getElementById("outbound-routes").replaceChildren(
    ...overview.outbound_routes.map((route) => {
      const row = document.createElement("tr");
      row.append(cell(route.name), cell(route.pattern), cell(route.account), cell(route.classifications.join(", ")));
      return row;
    }),
  );
}

start(load);
