// plait console: what every page shares. htmx sends the session's CSRF token with each request.
"use strict";
document.addEventListener("htmx:configRequest", (event) => {
  const token = document.querySelector('meta[name="csrf-token"]');
  if (token) event.detail.headers["X-CSRF-Token"] = token.content;
});
