// The browser's time zone, kept in a cookie: the server shows the times it writes into pages
// (a message's time, a share link's date, "Today" in the sidebar, an export) in it, as the
// page's own scripts show the times they write (chatsite/middleware.py, TimeZoneMiddleware).
// A classic script in <head>, as theme.js: the login page sets it before the first page that
// shows a time.
(() => {
  let zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    return;
  }
  if (!zone) return;
  const value = encodeURIComponent(zone);
  if (document.cookie.split("; ").includes(`tz=${value}`)) return;
  const secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = `tz=${value}; path=/; max-age=31536000; samesite=lax${secure}`;
})();
