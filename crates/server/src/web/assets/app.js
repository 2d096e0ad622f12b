// Progressive enhancement only: every page works without this file.
// Installs the service worker that caches the app's shell (see /sw.js), so that the app can be
// added to a phone's home screen.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}
