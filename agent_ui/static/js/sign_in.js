// The sign-in form: posts the organisation, username and password to POST /auth/login as JSON
// (docs/http_api.md), then opens the agent page. The organisation is remembered on this browser.

const ORGANISATION_KEY = "parley.organisation";
const form = document.getElementById("sign-in-form");
const error = document.getElementById("sign-in-error");
const button = document.getElementById("sign-in-button");
const organisation = document.getElementById("organisation");

organisation.value = localStorage.getItem(ORGANISATION_KEY) ?? "";
(organisation.value ? document.getElementById("username") : organisation).focus();

function refuse(text) {
  error.textContent = text;
  error.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const body = {
    organisation: organisation.value.trim(),
    username: document.getElementById("username").value.trim(),
    password: document.getElementById("password").value,
  };
  if (!body.organisation || !body.username || !body.password) {
    refuse("Fill in the organisation, your username and your password.");
    return;
  }
  button.disabled = true;
  try {
    const answer = await fetch("/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (answer.ok) {
      localStorage.setItem(ORGANISATION_KEY, body.organisation);
      window.location.assign("/agent");
      return;
    }
    if (answer.status === 401) {
      refuse("The organisation, username or password is wrong.");
    } else if (answer.status === 429) {
      refuse("Too many failed sign-ins: try again in a few minutes.");
    } else {
      const json = await answer.json().catch(() => null);
      refuse(json?.detail ?? `Sign-in failed (${answer.status}).`);
    }
  } catch {
    refuse("Parley cannot be reached: check the network and try again.");
  } finally {
    button.disabled = false;
  }
  document.getElementById("password").select();
});
