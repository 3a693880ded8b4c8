// The simulated DSM's UI driver: the server renders every screen (views.py); this script only
// swaps fragments in and sends each action to the server, so all state lives in the server.
(function () {
  "use strict";
  var root = document.getElementById("sim-root");
  var busy = false;
  var pollTimer = null;
  var statusTimer = null;

  function $(sel, base) { return (base || document).querySelector(sel); }
  function $all(sel, base) { return Array.prototype.slice.call((base || document).querySelectorAll(sel)); }

  function render(view) {
    root.innerHTML = view.html;
    root.setAttribute("data-view", view.view);
    root.setAttribute("data-screen", view.screen || "");
    afterRender();
  }

  function afterRender() {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
    var view = root.getAttribute("data-view");
    if (view === "installing") { pollTimer = setTimeout(function () { loadView(""); }, 500); }
    if (view === "login") { var u = $("#login_username"); if (u) { u.focus(); } }
  }

  function loadView(want) {
    return fetch("/sim/ui/view" + (want ? "?want=" + encodeURIComponent(want) : ""),
                 { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(render)
      .catch(function () { pollTimer = setTimeout(function () { loadView(want); }, 1000); });
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }

  function webapi(api, version, method, params) {
    var form = new URLSearchParams();
    form.set("api", api); form.set("version", String(version)); form.set("method", method);
    Object.keys(params || {}).forEach(function (k) { form.set(k, params[k]); });
    var desktop = $("#sds-desktop");
    var headers = { "Content-Type": "application/x-www-form-urlencoded" };
    if (desktop && desktop.getAttribute("data-synotoken")) {
      headers["X-SYNO-TOKEN"] = desktop.getAttribute("data-synotoken");
    }
    return fetch("/webapi/entry.cgi", {
      method: "POST", credentials: "same-origin", cache: "no-store", headers: headers, body: form
    }).then(function (r) { return r.json(); });
  }

  // -- admin form ---------------------------------------------------------------------------

  function clearErrors() {
    $all(".v-tooltip-error").forEach(function (n) { n.remove(); });
    $all(".v-form-item-error").forEach(function (n) { n.classList.remove("v-form-item-error"); });
  }

  function showErrors(errors) {
    Object.keys(errors).forEach(function (key) {
      var item = $('[data-sim-field="' + key + '"]');
      if (!item) { return; }
      item.classList.add("v-form-item-error");
      var tip = document.createElement("div");
      tip.className = "v-tooltip v-tooltip-error";
      tip.setAttribute("role", "alert");
      errors[key].forEach(function (msg) {
        var line = document.createElement("div");
        line.className = "error-msg";
        line.textContent = msg;
        tip.appendChild(line);
      });
      item.appendChild(tip);
    });
  }

  function submitAdmin() {
    if (busy) { return; }
    clearErrors();
    var body = {
      device_name: $("#syno-0").value, nas_account: $("#syno-1").value,
      password: $("#syno-2").value, password_confirm: $("#syno-3").value
    };
    busy = true;
    var card = $(".welcome-app-card");
    var mask = document.createElement("div");
    mask.className = "v-mask sim-saving";
    mask.textContent = "Applying settings...";
    card.appendChild(mask);
    postJson("/sim/ui/admin", body).then(function (res) {
      busy = false;
      if (res.view) { render(res.view); return; }
      mask.remove();
      showErrors(res.errors || {});
    }).catch(function () { busy = false; mask.remove(); });
  }

  // -- post-wizard screens ------------------------------------------------------------------

  function selectRadio(wrapper) {
    $all(".v-radio-wrapper", wrapper.parentNode).forEach(function (w) {
      var on = w === wrapper;
      w.classList.toggle("v-radio-wrapper-checked", on);
      w.setAttribute("aria-checked", on ? "true" : "false");
      var input = $("input", w); if (input) { input.checked = on; }
    });
  }

  function screenAction(el) {
    if (busy) { return; }
    busy = true;
    var screen = root.getAttribute("data-screen");
    var checked = $(".v-radio-wrapper-checked");
    var owner = el.closest("[data-sim-screen]");
    if (owner) { owner.classList.add("sim-leaving"); }
    postJson("/sim/ui/screen", {
      screen: screen, act: el.getAttribute("data-sim-act"),
      option: checked ? checked.getAttribute("data-sim-radio") : ""
    }).then(function (res) { busy = false; render(res.view); })
      .catch(function () { busy = false; loadView(""); });
  }

  // -- login --------------------------------------------------------------------------------

  function loginError(text) {
    var box = $(".login-error");
    box.textContent = text;
    box.hidden = !text;
  }

  function loginNext() {
    var name = $("#login_username").value.trim();
    if (!name) { loginError("Please enter your user name."); return; }
    loginError("");
    $('[data-sim-login-step="account"]').hidden = true;
    $('[data-sim-login-step="password"]').hidden = false;
    $(".login-account-name").textContent = name;
    $("#login_passwd").focus();
  }

  function loginSubmit() {
    if (busy) { return; }
    var pass = $("#login_passwd");
    busy = true;
    var form = new URLSearchParams({
      api: "SYNO.API.Auth", version: "7", method: "login", session: "webui",
      account: $("#login_username").value.trim(), passwd: pass.value,
      format: "cookie", enable_syno_token: "yes"
    });
    fetch("/webapi/entry.cgi", { method: "POST", credentials: "same-origin", body: form })
      .then(function (r) { return r.json(); })
      .then(function (res) {
        busy = false;
        if (res.success) { loadView(""); return; }
        pass.value = "";
        loginError("The account or password is invalid. Please try again.");
      }).catch(function () { busy = false; });
  }

  // -- desktop and Control Panel ------------------------------------------------------------

  function openWindow(key) {
    var windows = $("#sds-windows");
    if (!windows) { return; }
    if (key === "cp") {
      if ($(".sim-control-panel")) { return; }
      fetch("/sim/ui/panel?name=control-panel", { credentials: "same-origin" })
        .then(function (r) { if (r.status === 403) { loadView(""); throw new Error("403"); } return r.json(); })
        .then(function (res) { windows.insertAdjacentHTML("beforeend", res.html); });
      return;
    }
    var title = key === "pkg" ? "Package Center" : "File Station";
    if ($('[data-sim-app="' + key + '"]')) { return; }
    windows.insertAdjacentHTML("beforeend",
      '<div class="x-window sds-window" data-sim-app="' + key + '"><div class="x-window-header">' +
      '<span class="x-window-header-text">' + title + '</span><div class="x-tool x-tool-close" ' +
      'data-sim-action="window-close"></div></div><div class="x-window-body">' +
      '<div class="sim-unavailable">' + title + " is not part of the simulator.</div></div></div>");
  }

  function openModule(fn) {
    fetch("/sim/ui/panel?name=" + encodeURIComponent(fn), { credentials: "same-origin" })
      .then(function (r) { if (r.status === 403) { loadView(""); throw new Error("403"); } return r.json(); })
      .then(function (res) { $("#sim-cp-body").innerHTML = res.html; });
  }

  function selectTab(li) {
    var key = li.getAttribute("data-sim-tab");
    var panel = li.closest(".x-tab-panel");
    $all("[data-sim-tab]", panel).forEach(function (t) { t.classList.toggle("x-tab-strip-active", t === li); });
    $all("[data-sim-tab-body]", panel).forEach(function (b) {
      b.classList.toggle("x-hide-display", b.getAttribute("data-sim-tab-body") !== key);
    });
  }

  function toggleCheckbox(wrapper) {
    var input = $("input", wrapper);
    input.checked = !input.checked;
    wrapper.classList.toggle("syno-ux-checkbox-checked", input.checked);
    $(".syno-ux-checkbox-icon", wrapper).setAttribute("aria-checked", input.checked ? "true" : "false");
  }

  function status(kind, text) {
    var bar = $(".sim-statusbar");
    if (!bar) { return; }
    if (statusTimer) { clearTimeout(statusTimer); }
    bar.innerHTML = "";
    var div = document.createElement("div");
    div.className = "syno-ux-statusbar-" + kind;
    div.textContent = text;
    bar.appendChild(div);
    statusTimer = setTimeout(function () { bar.innerHTML = ""; }, 8000);
  }

  function apply() {
    if (busy) { return; }
    busy = true;
    var bar = $(".sim-statusbar");
    if (bar) { bar.innerHTML = ""; }
    var nfs = $("input[name='enable_nfs']").checked;
    var smb = $("input[name='enable_samba']").checked;
    webapi("SYNO.Core.FileServ.NFS", 2, "set", { enable_nfs: JSON.stringify(nfs) })
      .then(function (res) {
        if (!res.success) { throw res; }
        return webapi("SYNO.Core.FileServ.SMB", 3, "get", {});
      })
      .then(function (res) {
        if (!res.success) { throw res; }
        var params = {};
        Object.keys(res.data).forEach(function (k) { params[k] = JSON.stringify(res.data[k]); });
        params.enable_samba = JSON.stringify(smb);
        return webapi("SYNO.Core.FileServ.SMB", 3, "set", params);
      })
      .then(function (res) {
        if (!res.success) { throw res; }
        busy = false;
        status("success", "Changes applied");
      })
      .catch(function (err) {
        busy = false;
        var code = err && err.error ? err.error.code : "network";
        status("error", "Failed to apply the settings (error " + code + ").");
      });
  }

  // -- events -------------------------------------------------------------------------------

  // A click on the bare styled-checkbox input must not toggle it (as in DSM).
  document.addEventListener("click", function (ev) {
    if (ev.target.matches && ev.target.matches("input.syno-ux-checkbox-input")) { ev.preventDefault(); }
  }, true);

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    var el = t.closest("[data-sim-action]");
    if (el) {
      var action = el.getAttribute("data-sim-action");
      if (action === "start") { loadView("admin"); }
      else if (action === "admin-submit") { submitAdmin(); }
      else if (action === "screen") { screenAction(el); }
      else if (action === "login-next") { loginNext(); }
      else if (action === "login-submit") { loginSubmit(); }
      else if (action === "logout") { webapi("SYNO.API.Auth", 1, "logout", {}).then(function () { loadView(""); }); }
      else if (action === "window-close") { el.closest(".x-window").remove(); }
      else if (action === "toast-close") { el.closest("[data-sim-toast]").remove(); }
      else if (action === "fs-apply") { apply(); }
      else if (action === "fs-reset") { openModule("SYNO.SDS.AdminCenter.FileService.Main"); }
      return;
    }
    if ((el = t.closest("[data-sim-radio]"))) { selectRadio(el); return; }
    if ((el = t.closest("[data-sim-open]"))) { openWindow(el.getAttribute("data-sim-open")); return; }
    if ((el = t.closest("[data-sim-cp]"))) { openModule(el.getAttribute("data-sim-cp")); return; }
    if ((el = t.closest("[data-sim-tab]"))) { selectTab(el); return; }
    if ((el = t.closest(".syno-ux-checkbox-icon, .syno-ux-checkbox-label"))) {
      toggleCheckbox(el.closest(".syno-ux-checkbox"));
    }
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") { return; }
    var id = ev.target.id;
    if (id === "login_username") { ev.preventDefault(); loginNext(); }
    else if (id === "login_passwd") { ev.preventDefault(); loginSubmit(); }
    else if (/^syno-[0-3]$/.test(id)) { ev.preventDefault(); submitAdmin(); }
  });

  afterRender();
})();
