// Small progressive enhancements; every page works without them.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.matches("[data-autosubmit]")) el.form.submit();
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source.dataset.value || source.textContent.trim();
  try { await navigator.clipboard.writeText(text); button.dataset.copied = "true"; }
  catch (e) { window.prompt("Copy:", text); }
});
