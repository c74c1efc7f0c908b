// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Rule board: "Notification settings for …" buttons show and hide their panel.
  for (const button of document.querySelectorAll("button[aria-controls].gear")) {
    const panel = document.getElementById(button.getAttribute("aria-controls"));
    if (!panel) continue;
    const open = location.hash === "#" + panel.id;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    button.addEventListener("click", () => {
      const show = panel.hidden;
      panel.hidden = !show;
      button.setAttribute("aria-expanded", String(show));
      if (show) { const first = panel.querySelector("input[type=checkbox]"); if (first) first.focus(); }
    });
  }
  // A switch saves as soon as it is flipped.
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    for (const input of form.querySelectorAll("input[type=checkbox]")) {
      input.addEventListener("change", () => form.requestSubmit());
    }
  }
});

// "Test" answers in the status line without reloading the page, so screen readers announce it
// (a live region only speaks when it changes). Any trouble: the form posts as usual.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll('button[name="action"][value="test"]')) {
    const form = button.form;
    const status = form && form.querySelector('[role="status"]');
    if (!status || !window.fetch) continue;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      const data = new URLSearchParams(new FormData(form));
      data.set("action", "test");
      status.className = "result";
      status.textContent = "Testing…";
      button.disabled = true;
      try {
        const response = await fetch(form.getAttribute("action") || location.pathname, {
          method: "POST", body: data, credentials: "same-origin",
          headers: {"Content-Type": "application/x-www-form-urlencoded"}});
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.querySelector('[role="status"]#test-result');
        const alert = page.querySelector('main [role="alert"]');
        if (!fresh && !alert) throw new Error("unexpected answer");
        const old = document.querySelector('main [role="alert"]');
        if (old) old.remove();
        if (alert) form.before(document.importNode(alert, true));
        status.className = fresh ? fresh.className : "result error";
        status.textContent = fresh ? fresh.textContent : "";
      } catch (e) {
        button.disabled = false;
        form.requestSubmit(button);
        return;
      }
      button.disabled = false;
    });
  }
});
