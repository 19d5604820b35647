// otpgate hosted pages: small enhancements only. Every page works without
// this file; the CSP allows no inline script, so all behaviour lives here.
(function () {
  "use strict";

  // The resend button arrives disabled with data-resend-in seconds to wait and
  // a label such as "Resend code (30 s)". Count down in place (the label's one
  // number is replaced, so any language works) and enable it at zero with the
  // data-ready label. A deadline, not a tick count, survives throttled tabs.
  document.querySelectorAll("button[data-resend-in]").forEach(function (btn) {
    var seconds = parseInt(btn.getAttribute("data-resend-in"), 10);
    var waitLabel = btn.textContent;
    var deadline = Date.now() + (seconds > 0 ? seconds : 0) * 1000;
    var timer = null;
    function tick() {
      var left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) {
        if (timer !== null) {
          clearInterval(timer);
        }
        btn.disabled = false;
        btn.textContent = btn.getAttribute("data-ready") || waitLabel;
        return;
      }
      btn.textContent = waitLabel.replace(/\d+/, String(left));
    }
    tick();
    if (btn.disabled) {
      timer = setInterval(tick, 1000);
    }
  });

  // A code pasted as "123 456" or "123-456" would be cut by maxlength and
  // refused by the pattern: keep its digits only.
  document.querySelectorAll('input[autocomplete="one-time-code"]').forEach(function (input) {
    input.addEventListener("paste", function (ev) {
      var text = ev.clipboardData && ev.clipboardData.getData("text");
      if (!text) {
        return;
      }
      var digits = text.replace(/\D/g, "");
      var max = input.maxLength > 0 ? input.maxLength : digits.length;
      ev.preventDefault();
      input.value = digits.slice(0, max);
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });

  // A double click would post the same step twice and the second post would
  // end on an error page: ignore submits after the first. Buttons are not
  // disabled, because a disabled submitter drops its name=value (the consent
  // decision). A page restored from the back/forward cache starts afresh.
  var forms = document.querySelectorAll("form");
  forms.forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (form.getAttribute("data-submitted") === "1") {
        ev.preventDefault();
        return;
      }
      form.setAttribute("data-submitted", "1");
    });
  });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) {
      forms.forEach(function (form) {
        form.removeAttribute("data-submitted");
      });
    }
  });
})();
