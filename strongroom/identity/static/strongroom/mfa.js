// Second factors: wire allauth's WebAuthn forms (mfa/js/webauthn.js) to the buttons that ask
// for them, and show why a ceremony failed (cancelled, no key, a key of another account) next
// to the button instead of only in the console. Loaded as a file: the CSP allows no inline
// script, so the buttons carry what allauth's pages put in <script> blocks as data attributes:
//   data-webauthn="login|authenticate|add"  data-credential="<id of the hidden input>"
//   data-options="<JSON of the server's options>"  data-passwordless="<id of the checkbox>"
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    const forms = window.allauth && window.allauth.webauthn && window.allauth.webauthn.forms;
    if (!forms) return;
    document.querySelectorAll("[data-webauthn]").forEach(function (button) {
      const kind = button.dataset.webauthn;
      const data = button.dataset.options ? JSON.parse(button.dataset.options) : undefined;
      const credential = button.dataset.credential;
      if (kind === "login") {
        forms.loginForm({ ids: { login: button.id, credential: credential } });
      } else if (kind === "authenticate") {
        forms.authenticateForm({ ids: { authenticate: button.id, credential: credential }, data: data });
      } else if (kind === "add") {
        forms.addForm({ ids: { add: button.id, credential: credential, passwordless: button.dataset.passwordless }, data: data });
      }
    });
  });
  document.addEventListener("allauth.error", function (event) {
    const box = document.querySelector("[data-webauthn-error]");
    if (!box) return;
    event.preventDefault();
    const error = event.detail && event.detail.exception;
    box.textContent = error && error.name === "NotAllowedError"
      ? "No security key or passkey answered, or you cancelled. Try again."
      : "That did not work" + (error && error.message ? ": " + error.message : ".");
    box.hidden = false;
  });
})();
