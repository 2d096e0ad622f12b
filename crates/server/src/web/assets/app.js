// Progressive enhancement only: every page works without this file.
//
// 1. Installs the service worker that caches the app's shell (see /sw.js), so that the app can
//    be added to a phone's home screen.
// 2. Live updates: the page listens to /live (Server-Sent Events). Each `unread` event carries
//    the person's unread count: the header's badge shows it, a rise is announced to screen
//    readers and, while the page is hidden and the person allowed it, shown as a browser
//    notification. The open conversation fetches its newer messages and statuses; the inbox
//    reloads its list.
"use strict";

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}

(function () {
  const body = document.body;
  const src = body.dataset.live;
  if (!src || !("EventSource" in window)) return;

  const badge = document.getElementById("unread-badge");
  const count = document.getElementById("unread-count");
  const announce = document.getElementById("announce");
  let unread = count ? Number(count.textContent) || 0 : 0;

  function say(text) {
    if (announce) announce.textContent = text;
  }

  function notify(n) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) return;
    try {
      const note = new Notification("Switchboard", { body: n === 1 ? "1 unread message" : n + " unread messages", tag: "switchboard-unread" });
      note.onclick = () => { window.focus(); note.close(); };
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  let busy = false;
  async function refreshConversation() {
    const live = document.getElementById("live");
    if (!live || busy) return;
    busy = true;
    try {
      const after = live.dataset.after || "0";
      const res = await fetch(live.dataset.liveSrc + "?after=" + encodeURIComponent(after), { credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const items = doc.getElementById("live-items");
      const statuses = doc.getElementById("live-statuses");
      const history = document.getElementById("history");
      if (items && history) {
        const fresh = Array.from(items.content.querySelectorAll("li.item"));
        for (const li of fresh) {
          if (!document.getElementById(li.id)) history.appendChild(document.importNode(li, true));
        }
        if (fresh.length) {
          live.dataset.after = items.dataset.lastSeq;
          const empty = document.getElementById("no-messages");
          if (empty) empty.remove();
          say(fresh.length === 1 ? "1 new message" : fresh.length + " new messages");
        }
      }
      const box = document.getElementById("statuses");
      if (statuses && box) {
        const next = statuses.innerHTML.trim();
        if (box.innerHTML.trim() !== next) box.innerHTML = next;
      }
    } finally {
      busy = false;
    }
  }

  async function refreshInbox() {
    const list = document.getElementById("inbox-list");
    if (!list) return;
    const res = await fetch(location.href, { credentials: "same-origin" });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.getElementById("inbox-list");
    if (fresh) list.replaceWith(document.importNode(fresh, true));
  }

  function onUnread(e) {
    let n;
    try { n = JSON.parse(e.data).unread; } catch (_) { return; }
    if (typeof n !== "number" || n < 0) return;
    const rose = n > unread;
    if (count) count.textContent = String(n);
    if (badge) badge.hidden = n === 0;
    if (rose) {
      say(n === 1 ? "1 unread message" : n + " unread messages");
      notify(n);
      refreshInbox();
    }
    unread = n;
    refreshConversation();
  }

  // The stream is closed when the page is left and opened again if it comes back from the
  // back/forward cache: a left page that kept its stream would hold one of the browser's six
  // connections to the hub, and after a few pages the next one would wait for a free one.
  let events = null;
  function listen() {
    if (events) return;
    events = new EventSource(src);
    events.addEventListener("unread", onUnread);
  }
  window.addEventListener("pagehide", () => {
    if (events) events.close();
    events = null;
  });
  window.addEventListener("pageshow", listen);
  listen();

  // Browser notifications need the person's permission, asked from a click.
  const ask = document.getElementById("enable-notifications");
  if (ask && "Notification" in window && Notification.permission === "default") {
    ask.hidden = false;
    ask.addEventListener("click", () => {
      Notification.requestPermission().then(() => { ask.hidden = true; });
    });
  }
})();

// Lists by keyboard: J and K move the focus to the next or previous item of the inbox or
// triage list (each item's link), as in mail clients; Enter opens it. Typing in a field is
// left alone.
document.addEventListener("keydown", (e) => {
  if (e.key !== "j" && e.key !== "k") return;
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  const t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
  const links = Array.from(document.querySelectorAll("table.inbox td a, section.card > p > a[href^='/messages/']"));
  if (!links.length) return;
  const at = links.indexOf(document.activeElement);
  const next = e.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
  links[at === -1 ? 0 : next].focus();
  e.preventDefault();
});
