// Live updates without a reload: every few seconds, fetch this page's "live" block
// (?partial=1, server-rendered, with the page's own query: its filters stay) and swap it in.
// Paused while the tab is hidden, and while someone writes in a form inside the block: a swap
// would wipe a comment half typed (issue 16), so it waits until the form is sent or emptied.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live) return;
  // A filter applies as soon as it is chosen (the button is there for pages without script).
  live.addEventListener("change", function (event) {
    const field = event.target;
    if (field.matches && field.matches("select[data-autosubmit]") && field.form) field.form.requestSubmit();
  });
  if (!live.dataset.live) return;
  const every = Number(live.dataset.live) || 5000;

  function editing() {
    const active = document.activeElement;
    if (active && live.contains(active) && active.matches("input, textarea, select")) return true;
    for (const field of live.querySelectorAll("input:not([type=hidden]), textarea")) {
      if (field.value !== field.defaultValue) return true;  // unsent text (or hours)
    }
    for (const select of live.querySelectorAll("select")) {
      // A select none of whose options is marked selected shows its first one: that is no edit.
      const marked = Array.prototype.findIndex.call(select.options, (o) => o.defaultSelected);
      if (select.selectedIndex !== (marked === -1 ? 0 : marked)) return true;
    }
    return false;
  }

  async function refresh() {
    if (document.hidden) return;
    if (editing()) { live.dataset.paused = "editing"; return; }
    delete live.dataset.paused;
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    url.hash = "";
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.status === 401 || response.redirected) { window.location.reload(); return; }
      if (!response.ok) return;
      const html = await response.text();
      if (editing()) { live.dataset.paused = "editing"; return; }  // began to type meanwhile
      live.innerHTML = html;
      live.dataset.updated = new Date().toISOString();
    } catch (e) { /* the server restarts: try again next time */ }
  }
  window.setInterval(refresh, every);
})();
