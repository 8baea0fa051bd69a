// /admin/configuration: the whole configuration as YAML files, checked and applied through
// /api/admin/configuration (the check and the apply of `parley config apply`). Each problem is
// shown under its file's text, and listed with a link that puts the cursor in that file.

import { Refused, call, say, showRecentChanges, start } from "./admin_api.js";

const form = document.getElementById("config-form");
const files = document.getElementById("config-files");
const result = document.getElementById("config-result");
const problemList = document.getElementById("config-problems");
const state = { revision: null };

const slug = (name) => name.replace(/\W/g, "-");

function texts() {
  const found = {};
  for (const area of files.querySelectorAll("textarea")) found[area.dataset.file] = area.value;
  return found;
}

async function load() {
  const configuration = await call("GET", "/api/admin/configuration");
  state.revision = configuration.revision;
  document.getElementById("config-revision").textContent = configuration.revision;
  files.replaceChildren(
    ...Object.entries(configuration.files).map(([name, text]) => {
      const field = document.createElement("div");
      field.className = "field config-file";
      const label = document.createElement("label");
      label.htmlFor = `file-${slug(name)}`;
      label.textContent = name;
      const area = document.createElement("textarea");
      area.id = `file-${slug(name)}`;
      area.dataset.file = name;
      area.rows = Math.min(24, Math.max(4, text.split("\n").length + 1));
      area.spellcheck = false;
      area.value = text;
      area.setAttribute("aria-describedby", `file-${slug(name)}-problems`);
      const problems = document.createElement("ul");
      problems.id = `file-${slug(name)}-problems`;
      problems.className = "field-error problem-list";
      problems.hidden = true;
      field.append(label, area, problems);
      return field;
    }),
  );
  showProblems([]);
}

function showProblems(problems) {
  for (const list of files.querySelectorAll("ul.problem-list")) {
    list.replaceChildren();
    list.hidden = true;
  }
  for (const area of files.querySelectorAll("textarea")) area.removeAttribute("aria-invalid");
  problemList.replaceChildren(
    ...problems.map((problem) => {
      const text = `${problem.file}: ${problem.where}: ${problem.message}`;
      const area = document.getElementById(`file-${slug(problem.file)}`);
      const item = document.createElement("li");
      if (area) {
        area.setAttribute("aria-invalid", "true");
        const beside = document.getElementById(`file-${slug(problem.file)}-problems`);
        const note = document.createElement("li");
        note.textContent = `${problem.where}: ${problem.message}`;
        beside.append(note);
        beside.hidden = false;
        const link = document.createElement("a");
        link.href = `#${area.id}`;
        link.textContent = text;
        link.addEventListener("click", (event) => {
          event.preventDefault();
          area.focus();
        });
        item.append(link);
      } else {
        item.textContent = text;
      }
      return item;
    }),
  );
}

function report(text, valid) {
  result.textContent = text;
  result.dataset.valid = String(valid);
}

document.getElementById("config-check").addEventListener("click", async () => {
  try {
    const checked = await call("POST", "/api/admin/configuration/check", { files: texts() });
    showProblems(checked.problems);
    report(
      checked.valid
        ? "The files are valid: Apply makes them the configuration."
        : `${checked.problems.length} problem(s): nothing was applied.`,
      checked.valid,
    );
  } catch (error) {
    report(error.message, false);
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  let applied;
  try {
    applied = await call("PUT", "/api/admin/configuration", {
      files: texts(),
      revision: state.revision,
    });
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    showProblems(error.problems);
    if (error.code === "stale_revision") {
      report(
        "Someone changed the configuration since this page read it: nothing was applied. " +
          "Start again from the stored files, and redo the change.",
        false,
      );
    } else {
      report(`Not applied: ${error.message}`, false);
    }
    return;
  }
  const changed = Object.entries(applied.changes)
    .map(([table, count]) => `${table}: ${count.created} added, ${count.updated} changed, ${count.deleted} removed`)
    .join("; ");
  await load();
  report(
    applied.changed ? `Applied, revision ${applied.revision}. ${changed}.` : "Applied: nothing changed.",
    true,
  );
  say("The configuration is applied.");
  await showRecentChanges();
});

document.getElementById("config-reload").addEventListener("click", async () => {
  await load();
  report("The stored files are shown again.", true);
});

start(load);
