// The "Sign out" button of every signed-in page: tells the page's scripts (the agent page closes
// its socket on "parley:sign-out"), ends the session (POST /auth/logout), opens the sign-in page.

const button = document.getElementById("sign-out");

button?.addEventListener("click", async () => {
  button.disabled = true;
  window.dispatchEvent(new Event("parley:sign-out"));
  try {
    await fetch("/auth/logout", { method: "POST" });
  } finally {
    window.location.assign("/sign-in");
  }
});
