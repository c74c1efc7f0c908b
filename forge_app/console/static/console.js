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
