/* Wertkette page behaviour. Loaded as a file (CSP script-src 'self'): no inline scripts or
   on* attributes anywhere; everything hooks in through data- attributes. */
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  onReady(function () {
    // Forms that ask before they do something that cannot be undone.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });

    // Filters that apply as soon as a choice changes.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.form) {
          if (typeof select.form.requestSubmit === "function") {
            select.form.requestSubmit();
          } else {
            select.form.submit();
          }
        }
      });
    });

    // Timeline composer: channel and direction only for customer contacts.
    var interactionFields = document.getElementById("interaction-fields");
    var kindRadios = document.querySelectorAll("input[data-entry-kind]");
    function syncKind() {
      var checked = document.querySelector("input[data-entry-kind]:checked");
      var isInteraction = checked && checked.value === "interaction";
      if (interactionFields) {
        interactionFields.classList.toggle("d-none", !isInteraction);
        interactionFields.querySelectorAll("select").forEach(function (select) {
          select.required = Boolean(isInteraction);
        });
      }
    }
    kindRadios.forEach(function (radio) {
      radio.addEventListener("change", syncKind);
    });
    syncKind();

    // Audience picker: ticking an organisation means "only these organisations".
    var orgsRadio = document.getElementById("audience-organizations");
    document.querySelectorAll("input[data-audience-org]").forEach(function (box) {
      box.addEventListener("change", function () {
        if (box.checked && orgsRadio) {
          orgsRadio.checked = true;
        }
      });
    });

    // Dialogs that must be open when the page comes back with a problem to fix.
    document.querySelectorAll("[data-show-on-load]").forEach(function (element) {
      if (window.bootstrap && window.bootstrap.Modal) {
        window.bootstrap.Modal.getOrCreateInstance(element).show();
      }
    });

    // Copy buttons (the API token shown once).
    document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.querySelector(button.getAttribute("data-copy-target"));
        if (!source) {
          return;
        }
        source.select();
        var done = function () {
          button.textContent = button.getAttribute("data-copied-text") || "OK";
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(source.value).then(done, function () {
            document.execCommand("copy");
            done();
          });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
  });
})();
