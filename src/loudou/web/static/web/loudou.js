/* loudou: the modal dialog that htmx fills, and drag-and-drop on the board. No framework. */
(function () {
  "use strict";

  function modal() { return document.getElementById("modal"); }

  // Anything htmx swaps into #modal-body opens the dialog; an empty answer closes it.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "modal-body") {
      var dialog = modal();
      if (event.detail.target.innerHTML.trim()) {
        if (!dialog.open) dialog.showModal();
        var first = dialog.querySelector("textarea, input:not([type=hidden]), select");
        if (first) first.focus();
      } else if (dialog.open) {
        dialog.close();
      }
    }
  });
  // The server says "done" with the HX-Trigger header: close the dialog.
  document.addEventListener("closeModal", function () {
    var dialog = modal();
    if (dialog && dialog.open) dialog.close();
  });
  // ... and says what happened, in a toast that fades by itself.
  document.addEventListener("showMessage", function (event) {
    var text = event.detail && (event.detail.value || event.detail);
    if (typeof text !== "string" || !text) return;
    var toast = document.createElement("div");
    toast.className = "toast";
    toast.setAttribute("role", "status");
    toast.textContent = text;
    document.body.appendChild(toast);
    setTimeout(function () { toast.classList.add("gone"); }, 3500);
    setTimeout(function () { toast.remove(); }, 4200);
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-modal]")) {
      event.preventDefault();
      modal().close();
    }
  });
  // Buttons that ask first (data-confirm) or reload the page (data-reload): no inline handlers,
  // which the Content-Security-Policy blocks.
  document.addEventListener("click", function (event) {
    var asking = event.target.closest("[data-confirm]");
    if (asking && !window.confirm(asking.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (event.target.closest("[data-reload]")) window.location.reload();
  });
  // Filter menus that apply on change; a one-time secret selected when focused.
  document.addEventListener("change", function (event) {
    var field = event.target.closest && event.target.closest("[data-autosubmit]");
    if (field && field.form) field.form.submit();
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });
  // A failed request (server error, network) must not fail silently.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 500) {
      window.alert(document.documentElement.lang === "en"
        ? "The server could not complete this action (" + status + "). Nothing was changed."
        : "服务器未能完成此操作（" + status + "），未做任何更改。");
    }
  });
  // htmx 2 does not swap 4xx answers by default; ours carry the form with its error messages.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // ---- the board -----------------------------------------------------------------------
  var dragged = null;

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".deal[draggable=true]");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    document.body.classList.add("dragging-deal");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.id);
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    document.body.classList.remove("dragging-deal");
    document.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
  });
  function dropZone(target) { return target.closest && target.closest("[data-drop-stage]"); }
  document.addEventListener("dragover", function (event) {
    var zone = dragged && dropZone(event.target);
    if (!zone) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".drop-target").forEach(function (el) {
      if (el !== zone) el.classList.remove("drop-target");
    });
    zone.classList.add("drop-target");
  });
  document.addEventListener("drop", function (event) {
    var zone = dragged && dropZone(event.target);
    if (!zone) return;
    event.preventDefault();
    var card = dragged;
    zone.classList.remove("drop-target");
    if (zone.dataset.dropStage === card.dataset.stage) return;
    htmx.ajax("POST", card.dataset.moveUrl, {
      target: "#modal-body",
      swap: "innerHTML",
      values: { to_stage: zone.dataset.dropStage, version: card.dataset.version },
    });
  });
})();
