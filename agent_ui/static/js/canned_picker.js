// The canned-response picker of a reply box: a button, or "/" typed at the start of an empty
// reply, opens a filterable list of the canned responses the agent may use (GET
// /api/canned-responses: everyone's and their workgroups'); choosing one inserts its text where
// the cursor is.
//
// Keyboard: in the filter, Enter inserts the first match, Arrow Down moves into the list (as
// soon as it is shown, when pressed while it is still loading), Escape closes and goes back to
// the reply (a picker that "/" opened leaves the "/" there, for a text that starts with one); in
// the list, the arrows move and Enter or Space inserts.
// `new CannedPicker({root, reply, load})`: `root` holds the picker's elements (the composer),
// `load()` resolves to the list.

export class CannedPicker {
  constructor({ root, reply, load }) {
    this.reply = reply;
    this.load = load;
    this.button = root.querySelector(".canned-button");
    this.picker = root.querySelector(".canned-picker");
    this.filter = root.querySelector(".canned-filter");
    this.list = root.querySelector(".canned-list");
    this.empty = root.querySelector(".canned-empty");
    this.responses = [];
    this.asked = 0;
    this.bySlash = false; // opened by "/" typed at the start of the reply
    this.intoList = false; // Arrow Down pressed in the filter before the list was shown
    this._wire();
  }

  get isOpen() {
    return !this.picker.hidden;
  }

  _wire() {
    this.button.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    this.reply.addEventListener("keydown", (event) => {
      if (event.key === "/" && this.reply.value === "" && !event.isComposing) {
        event.preventDefault();
        this.open({ bySlash: true });
      }
    });
    this.filter.addEventListener("input", () => {
      this.intoList = false;
      this._render();
    });
    this.filter.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault(); // not the reply's form
        const first = this._shown()[0];
        if (first) this.insert(first);
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        const first = this.list.querySelector("button");
        if (first) first.focus();
        else this.intoList = true; // still loading: go into the list once it is shown
      } else if (event.key === "Escape") {
        event.preventDefault();
        this._escape();
      }
    });
    this.list.addEventListener("keydown", (event) => {
      const buttons = [...this.list.querySelectorAll("button")];
      const at = buttons.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && at < buttons.length - 1) buttons[at + 1].focus();
      else if (event.key === "ArrowUp") (at > 0 ? buttons[at - 1] : this.filter).focus();
      else if (event.key === "Escape") this._escape();
      else return;
      event.preventDefault();
    });
  }

  async open({ bySlash = false } = {}) {
    this.bySlash = bySlash;
    this.picker.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.filter.value = "";
    this.filter.focus();
    this.intoList = false;
    const asked = ++this.asked;
    this.empty.textContent = "Loading…";
    this.empty.hidden = false;
    this.list.replaceChildren();
    try {
      const responses = await this.load();
      if (asked !== this.asked) return;
      this.responses = responses;
      this.empty.textContent = "No canned response matches.";
    } catch (error) {
      if (asked !== this.asked) return;
      this.responses = [];
      this.empty.textContent = `Could not read the canned responses: ${error.message ?? error}`;
    }
    this._render();
  }

  /** Escape: close; the "/" that opened the picker was meant as text after all. */
  _escape() {
    if (this.bySlash && this.reply.value === "") {
      this.reply.value = "/";
      this.reply.dispatchEvent(new Event("input", { bubbles: true }));
    }
    this.close();
  }

  close({ focusReply = true } = {}) {
    this.asked += 1;
    this.picker.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (focusReply) this.reply.focus();
  }

  _shown() {
    const wanted = this.filter.value.trim().toLocaleLowerCase();
    if (!wanted) return this.responses;
    return this.responses.filter((response) =>
      `${response.title}\n${response.body}`.toLocaleLowerCase().includes(wanted),
    );
  }

  _render() {
    const shown = this._shown();
    this.list.replaceChildren(
      ...shown.map((response) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "canned-option";
        button.dataset.cannedId = String(response.id);
        const title = document.createElement("span");
        title.className = "canned-title";
        title.textContent = response.title;
        const scope = document.createElement("span");
        scope.className = "canned-scope muted";
        scope.textContent = response.workgroup ?? "everyone";
        const preview = document.createElement("span");
        preview.className = "canned-preview muted";
        preview.textContent = response.body;
        button.append(title, " ", scope, preview);
        button.addEventListener("click", () => this.insert(response));
        item.append(button);
        return item;
      }),
    );
    if (this.empty.textContent !== "Loading…") this.empty.hidden = shown.length > 0;
    const first = this.list.querySelector("button");
    if (this.intoList && first && document.activeElement === this.filter) {
      this.intoList = false;
      first.focus();
    }
  }

  /** Put the response's text where the reply's cursor is (replacing a selection). */
  insert(response) {
    const reply = this.reply;
    reply.setRangeText(response.body, reply.selectionStart, reply.selectionEnd, "end");
    reply.dispatchEvent(new Event("input", { bubbles: true })); // the segment counter
    this.close();
  }
}
