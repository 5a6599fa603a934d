// Live updates without a reload: every few seconds, fetch this page's "live" block
// (?partial=1, server-rendered) and swap it in. Paused while the tab is hidden.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !live.dataset.live) return;
  const every = Number(live.dataset.live) || 5000;
  async function refresh() {
    if (document.hidden) return;
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.status === 401 || response.redirected) { window.location.reload(); return; }
      if (!response.ok) return;
      live.innerHTML = await response.text();
      live.dataset.updated = new Date().toISOString();
    } catch (e) { /* the server restarts: try again next time */ }
  }
  window.setInterval(refresh, every);
})();
