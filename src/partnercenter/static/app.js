// Small progressive enhancements; every page works without them.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (!el.matches("[data-autosubmit]")) return;
  const dialog = el.closest("dialog.page-dialog");
  if (dialog && el.form.method === "get") {
    const url = new URL(el.form.action, window.location.href);
    url.search = new URLSearchParams(new FormData(el.form)).toString();
    openPageDialog(url.toString());
    return;
  }
  el.form.submit();
});

// Links marked data-dialog open their page's [data-dialog-content] in a modal <dialog>;
// without JavaScript (or on any failure) they simply navigate to that page.
async function openPageDialog(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  } catch (e) {
    window.location.href = url;
    return;
  }
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const content = doc.querySelector("[data-dialog-content]");
  if (!response.ok || !content) {
    window.location.href = url;
    return;
  }
  let dialog = document.getElementById("pc-dialog");
  if (!dialog) {
    dialog = document.createElement("dialog");
    dialog.id = "pc-dialog";
    dialog.className = "page-dialog";
    document.body.appendChild(dialog);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "dialog-close";
  close.textContent = "\u00d7";
  close.setAttribute("aria-label", document.documentElement.lang.startsWith("es") ? "Cerrar" : "Close");
  close.addEventListener("click", () => dialog.close());
  dialog.replaceChildren(close, document.importNode(content, true));
  if (!dialog.open) {
    // Focus goes back where it was (the link that opened the dialog) when it closes.
    const opener = document.activeElement;
    dialog.addEventListener("close", () => { if (opener && opener.isConnected) opener.focus(); }, { once: true });
    dialog.showModal();
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-dialog]");
  if (!link || typeof HTMLDialogElement === "undefined") return;
  event.preventDefault();
  openPageDialog(link.href);
});
// --- Toasts: short confirmations ("Copied") announced to screen readers -------------------
function toast(message, kind) {
  let region = document.getElementById("pc-toasts");
  if (!region) {
    region = document.createElement("div");
    region.id = "pc-toasts";
    region.className = "toasts";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    document.body.appendChild(region);
  }
  // Inside an open modal dialog the rest of the page is inert: show the toast there.
  const modal = document.querySelector("dialog[open]");
  if (modal && region.parentElement !== modal) modal.appendChild(region);
  if (!modal && region.parentElement !== document.body) document.body.appendChild(region);
  const item = document.createElement("div");
  item.className = "toast" + (kind ? " toast-" + kind : "");
  item.dataset.testid = "toast";
  item.textContent = message;
  region.appendChild(item);
  setTimeout(() => item.remove(), 4000);
}

function t(name) {
  const texts = document.getElementById("pc-texts");
  return (texts && texts.dataset[name]) || name;
}

// --- Copy to the clipboard, with a fallback for browsers without the async clipboard -------
async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (e) { /* fall through to the selection fallback */ }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  (document.querySelector("dialog[open]") || document.body).appendChild(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  area.remove();
  return ok;
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source.dataset.value || source.value || source.textContent.trim();
  if (await copyText(text)) {
    button.dataset.copied = "true";
    toast(t("copied"));
  } else {
    if (source.select) source.select();
    toast(t("copyFailed"), "error");
  }
});

// Copy Link: make the link and copy it at once; without JavaScript the form posts and the
// page shows the link in a box.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-copy-link]")) return;
  event.preventDefault();
  const button = form.querySelector("button");
  if (button) button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) { form.submit(); return; }
    const data = await response.json();
    const box = document.getElementById("copied-link");
    if (box) { box.value = data.uri; box.closest("[hidden]")?.removeAttribute("hidden"); }
    if (await copyText(data.uri)) toast(t("linkCopied"));
    else toast(t("copyFailed"), "error");
  } catch (e) {
    form.submit();
  } finally {
    if (button) button.disabled = false;
  }
});

// Forms marked data-confirm ask first, in a modal dialog: the form's own button confirms,
// Cancel (or Esc) keeps everything as it was and puts focus back on the button. Without
// JavaScript the form simply posts.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-confirm]") || typeof HTMLDialogElement === "undefined") return;
  if (form.dataset.confirmed === "true") { delete form.dataset.confirmed; return; }
  event.preventDefault();
  const submitter = event.submitter || form.querySelector("[type=submit]");
  const dialog = document.createElement("dialog");
  dialog.className = "confirm-dialog";
  dialog.dataset.testid = "confirm-dialog";
  dialog.setAttribute("role", "alertdialog");
  dialog.setAttribute("aria-labelledby", "pc-confirm-title");
  dialog.setAttribute("aria-describedby", "pc-confirm-text");
  const title = document.createElement("h2");
  title.id = "pc-confirm-title";
  title.textContent = t("confirmTitle");
  const text = document.createElement("p");
  text.id = "pc-confirm-text";
  text.textContent = form.dataset.confirm;
  const actions = document.createElement("div");
  actions.className = "actions";
  const ok = document.createElement("button");
  ok.type = "button";
  ok.className = submitter && submitter.classList.contains("danger") ? "danger" : "primary";
  ok.dataset.testid = "confirm-ok";
  ok.textContent = (submitter && submitter.textContent.trim()) || t("confirmTitle");
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.dataset.testid = "confirm-cancel";
  cancel.textContent = t("cancel");
  actions.append(ok, cancel);
  dialog.append(title, text, actions);
  let confirmed = false;
  cancel.addEventListener("click", () => dialog.close());
  ok.addEventListener("click", () => { confirmed = true; dialog.close(); });
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (!confirmed) { if (submitter) submitter.focus(); return; }
    form.dataset.confirmed = "true";
    if (form.requestSubmit) form.requestSubmit(submitter || undefined);
    else form.submit();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  cancel.focus();  // the safe choice has focus: Enter or Space on it changes nothing
});

// Dialogs the server marks to open as modal (centred, focus kept inside, Esc closes).
document.addEventListener("DOMContentLoaded", () => {
  for (const dialog of document.querySelectorAll("dialog[data-show-modal]")) {
    if (!dialog.open && dialog.showModal) {
      // Closing puts focus on the control that asked for it (Get Key), not nowhere.
      const back = dialog.dataset.returnFocus && document.querySelector(dialog.dataset.returnFocus);
      if (back) dialog.addEventListener("close", () => back.focus(), { once: true });
      dialog.showModal();
    }
  }
  // A key is shown once: drop its one-time id from the address so it is not bookmarked.
  const url = new URL(window.location.href);
  if (url.searchParams.has("reveal")) {
    url.searchParams.delete("reveal");
    history.replaceState(null, "", url.pathname + (url.search || "") + url.hash);
  }
});

// The side menu marks the page you are on; the gear menu closes on Esc or a click outside.
document.addEventListener("DOMContentLoaded", () => {
  const here = window.location.pathname;
  let best = null;
  for (const link of document.querySelectorAll(".sidenav a[href]")) {
    const path = new URL(link.href).pathname;
    if ((here === path || here.startsWith(path + "/")) && (!best || path.length > new URL(best.href).pathname.length)) best = link;
  }
  if (best) best.setAttribute("aria-current", "page");
  for (const el of document.querySelectorAll(".truncate:not([title])")) el.title = el.textContent.trim();
  // Wide tables scroll inside their own box (reachable by keyboard) instead of the page.
  for (const table of document.querySelectorAll("main table")) {
    if (table.parentElement.classList.contains("table-wrap")) continue;
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    const heading = table.querySelector("caption") || table.previousElementSibling;
    wrap.setAttribute("aria-label", (heading && heading.textContent.trim().slice(0, 80)) || document.title);
    table.replaceWith(wrap);
    wrap.appendChild(table);
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});
document.addEventListener("click", (event) => {
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target)) menu.open = false;
  }
});
