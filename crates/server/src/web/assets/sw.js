// Switchboard's service worker: keeps the shell's static assets for offline start-up. Pages
// and the API are never cached (they are per person and change all the time).
const SHELL = "switchboard-shell-v1";
const ASSETS = ["/assets/app.css", "/assets/app.js", "/assets/htmx.min.js", "/assets/icon.svg"];
self.addEventListener("install", (e) => e.waitUntil(caches.open(SHELL).then((c) => c.addAll(ASSETS))));
self.addEventListener("activate", (e) =>
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))));
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method === "GET" && url.origin === location.origin && ASSETS.includes(url.pathname)) {
    e.respondWith(caches.match(e.request).then((hit) => hit || fetch(e.request)));
  }
});
