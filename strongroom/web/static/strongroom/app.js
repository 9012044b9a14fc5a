// Strongroom UI behaviour: keyboard shortcuts, composer tabs, message frames.
// Loaded as a file (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";

  function typing(event) {
    const t = event.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }

  // ---- conversation lists: j / k / Enter ----------------------------------------------
  function listRows() {
    const list = document.querySelector("[data-keynav]");
    return list ? Array.from(list.querySelectorAll(".conv-row")) : [];
  }
  function select(index) {
    const rows = listRows();
    if (!rows.length) return;
    const i = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((r) => r.classList.remove("selected"));
    rows[i].classList.add("selected");
    const link = rows[i].querySelector("a");
    if (link) link.focus({ preventScroll: true });
    rows[i].scrollIntoView({ block: "nearest" });
  }
  function selectedIndex() {
    return listRows().findIndex((r) => r.classList.contains("selected") || r.contains(document.activeElement));
  }

  // ---- composer tabs ---------------------------------------------------------------------
  function showComposer(name) {
    const tab = document.querySelector(`[data-tab="${name}"]`);
    if (!tab) return false;
    document.querySelectorAll("[data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b === tab)));
    const target = document.getElementById(tab.getAttribute("aria-controls"));
    document.querySelectorAll("[data-composer]").forEach((f) => { f.hidden = f !== target; });
    const area = target && target.querySelector("textarea");
    if (area) { area.focus(); area.scrollIntoView({ block: "center" }); }
    return true;
  }
  document.addEventListener("click", (event) => {
    const tab = event.target.closest("[data-tab]");
    if (tab) showComposer(tab.dataset.tab);
    const images = event.target.closest("[data-load-images]");
    if (images) {
      const article = document.getElementById(images.dataset.loadImages);
      const frame = article && article.querySelector("iframe");
      if (frame) { frame.src = frame.src.split("?")[0] + "?images=1"; }
      images.closest(".remote-images").hidden = true;
    }
    if (event.target.closest("[data-help-open]")) openHelp();
  });

  // ---- message frames: fit their content -------------------------------------------------
  function fit(frame) {
    try {
      const doc = frame.contentDocument;
      if (doc && doc.body) frame.style.height = Math.min(Math.max(Math.ceil(doc.body.scrollHeight), 60), 8000) + 16 + "px";
    } catch (e) { /* not readable: keep the default height */ }
  }
  function watchFrames(root) {
    root.querySelectorAll("iframe[data-autosize]").forEach((frame) => {
      frame.addEventListener("load", () => { fit(frame); setTimeout(() => fit(frame), 300); });
      if (frame.contentDocument && frame.contentDocument.readyState === "complete") fit(frame);
    });
  }

  // ---- help ------------------------------------------------------------------------------
  function openHelp() {
    const dialog = document.getElementById("shortcut-help");
    if (dialog && !dialog.open) dialog.showModal();
  }

  function click(selector) {
    const el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }

  let pendingG = false;
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      const form = event.target.closest && event.target.closest("form[data-composer]");
      if (form) { event.preventDefault(); form.requestSubmit(form.querySelector("[data-submit]") || undefined); }
      return;
    }
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (pendingG) {
      pendingG = false;
      const views = { m: "mine", u: "unassigned", a: "all" };
      if (views[event.key]) { window.location.href = "/conversations/?view=" + views[event.key]; }
      return;
    }
    const inConversation = !!document.querySelector("[data-conversation]");
    let handled = true;
    switch (event.key) {
      case "?": openHelp(); break;
      case "/": { const s = document.querySelector("[data-search]"); if (s) s.focus(); else handled = false; break; }
      case "g": pendingG = true; setTimeout(() => { pendingG = false; }, 1500); break;
      case "j": select(selectedIndex() + 1); break;
      case "k": select(selectedIndex() - 1); break;
      case "o": case "Enter": {
        const i = selectedIndex();
        if (i >= 0) { const a = listRows()[i].querySelector("a"); if (a) window.location.href = a.href; } else handled = false;
        break;
      }
      case "r": handled = inConversation && showComposer("reply"); break;
      case "n": handled = inConversation && showComposer("note"); break;
      case "a": handled = inConversation && click("[data-key-assign-me]"); break;
      case "e": handled = inConversation && click("[data-key-close]"); break;
      case "p": handled = inConversation && click("[data-key-pending]"); break;
      case "t": { const t = document.querySelector("[data-key-tag]"); if (t) t.focus(); else handled = false; break; }
      case "u": case "Escape": handled = inConversation && click("[data-back]"); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", () => {
    watchFrames(document);
    if (listRows().length && !document.querySelector("[data-search]:focus")) {
      listRows()[0].classList.add("selected");
    }
  });
})();
