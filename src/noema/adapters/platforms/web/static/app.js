// Small progressive enhancements; every page works without them.
"use strict";

function onReady(fn) { if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn); }

onReady(function () {
  // The tool picker switches tools as soon as one is chosen.
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });

  // Sliders show their value.
  document.querySelectorAll("input[type=range][data-show]").forEach(function (el) {
    var out = document.getElementById(el.dataset.show);
    el.addEventListener("input", function () { out.textContent = el.value; });
  });

  // File inputs: check size and type before uploading, and preview images.
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (el) {
    el.addEventListener("change", function () {
      var file = el.files[0], max = parseInt(el.dataset.maxBytes, 10);
      el.setCustomValidity("");
      if (!file) return;
      if (file.size > max) el.setCustomValidity("This file is larger than " + Math.round(max / 1048576) + " MB.");
      else if (el.accept && el.accept.indexOf("image/") === 0 && file.type.indexOf("image/") !== 0) el.setCustomValidity("Please choose an image.");
      el.reportValidity();
      var preview = el.dataset.preview && document.getElementById(el.dataset.preview);
      if (preview && el.validity.valid) { preview.src = URL.createObjectURL(file); preview.hidden = false; }
    });
  });

  // A running generation follows its progress over Server-Sent Events and shows the result in place.
  var card = document.getElementById("generation-card");
  if (card && card.dataset.terminal === "false" && window.EventSource) {
    var id = card.dataset.id;
    var source = new EventSource("/app/generations/" + id + "/events");
    source.addEventListener("progress", function (e) {
      var g = JSON.parse(e.data);
      var bar = document.getElementById("progress"), status = document.getElementById("status-text");
      var live = document.getElementById("live-status");
      if (bar) { bar.value = Math.round(g.progress * 100); bar.textContent = bar.value + "%"; }
      if (status) status.textContent = g.status.replace("_", " ");
      if (live && g.liveStatus) live.textContent = g.liveStatus;
      card.dataset.status = g.status;
    });
    var finish = function () {
      source.close();
      fetch("/app/generations/" + id + "/card", { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          card.outerHTML = html;
          // The run is settled: show the balance as it is now, not as it was with the hold, and what it cost.
          var fresh = document.getElementById("generation-card"), header = document.querySelector(".balance");
          if (!fresh || !header || !fresh.dataset.balance) return;
          header.textContent = fresh.dataset.balance;
          var reserved = document.querySelector(".reserved"), change = document.querySelector(".balance-change");
          if (reserved) { reserved.textContent = fresh.dataset.reserved + " reserved"; reserved.hidden = fresh.dataset.held === "0"; }
          if (change) { change.textContent = fresh.dataset.charged; change.title = fresh.dataset.charged ? "Charged for this run" : ""; }
        });
    };
    source.addEventListener("result", finish);
    source.addEventListener("failure", finish);
  }

  // After a card payment: wait for Stripe's confirmation (the webhook credits, never this page), then show the balance.
  var topup = document.getElementById("topup");
  if (topup && topup.dataset.credited === "false") {
    var poll = function () {
      fetch("/app/payments/" + topup.dataset.payment + "/status", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          if (!p.credited) { setTimeout(poll, 1000); return; }
          topup.dataset.credited = "true";
          document.getElementById("topup-status").textContent = "Paid: " + p.credit + " added. Your balance is " + p.balance + ".";
          var header = document.querySelector(".balance");
          if (header) header.textContent = p.balance;
        })
        .catch(function () { setTimeout(poll, 2000); });
    };
    poll();
  }
});
