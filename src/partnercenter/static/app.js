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
  if (!dialog.open) dialog.showModal();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-dialog]");
  if (!link || typeof HTMLDialogElement === "undefined") return;
  event.preventDefault();
  openPageDialog(link.href);
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source.dataset.value || source.textContent.trim();
  try { await navigator.clipboard.writeText(text); button.dataset.copied = "true"; }
  catch (e) { window.prompt("Copy:", text); }
});
