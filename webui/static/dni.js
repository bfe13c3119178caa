/*! calltracking dynamic number insertion snippet. No dependencies.
 *
 * <script src="https://PBX/dni.js" data-project="KEY" async></script>
 *
 * Optional data attributes on the script tag:
 *   data-default="+7 (495) 123-45-67"  the number written on the site (default: the project's)
 *   data-selector="header, .contacts"   where to replace (CSS selector; default: the whole body)
 *   data-server="https://pbx.example"   API base URL (default: where dni.js came from)
 *   data-pool="website"                 pool to use (default: chosen by the server)
 *   data-timeout="2000"                 ms to wait for the server before keeping the default
 *   data-heartbeat="30"                 seconds between keep-alives while the visitor is active
 *   data-promo-selector="[data-ct-promo]" elements that receive a promo code when one is shown
 *   data-lang="ru"                      the callback widget's language, en or ru (default: the page's lang)
 *   data-callback-delay="45"            seconds on the site before the callback widget shows itself
 *                                       (default: the project's; "off": only on a trigger)
 *
 * Callback widget (when the project has callbacks on): a small form for a phone number that
 * shows itself once the visitor has been on the site for the delay (once per tab session), and
 * on any click on an element with the attribute data-calltracking-callback, or on
 * window.calltracking.callback(). It lives in a shadow root: no CSS is added to the page.
 *
 * A new number is held provisionally (about a minute) until the first heartbeat, sent about
 * 5 s after it is shown (or as soon as the page becomes visible); then it is held while the
 * visitor is active. The visitor id is issued (and signed) by the server.
 *
 * On every page load the snippet says that it ran (version, page origin and path): with its
 * number request, else (a page restored from the back/forward cache, no fetch) with a small
 * POST to /api/dni/ping. The setup page shows where and when it last ran.
 *
 * Everything runs inside try/catch: the snippet never breaks the page.
 */
(function (window, document) {
  "use strict";
  if (!window || !document || window.__ctDniLoaded) { return; }
  window.__ctDniLoaded = true;

  var VERSION = "2";  // calltracking.dni.snippet_pings.SNIPPET_VERSION
  var VID_KEY = "_ct_vid", CACHE_KEY = "_ct_dni";
  var state = { status: "init", number: null, visitorId: null, promo: null, replaced: 0, provisional: false };
  window.CallTrackingDNI = state;

  function safe(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) { state.error = String(e && e.message || e); }
    };
  }

  function digits(s) { return String(s || "").replace(/\D+/g, ""); }

  function findScript() {
    var s = document.currentScript;
    if (s && s.getAttribute("data-project")) { return s; }
    var all = document.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i--) {
      if (all[i].getAttribute("data-project") && /dni\.js(\?|#|$)/.test(all[i].src || "")) { return all[i]; }
    }
    return null;
  }

  function getCookie(name) {
    var parts = ("; " + document.cookie).split("; " + name + "=");
    return parts.length > 1 ? decodeURIComponent(parts.pop().split(";")[0]) : "";
  }

  function setCookie(name, value, days) {
    try {
      var exp = new Date(Date.now() + days * 864e5).toUTCString();
      document.cookie = name + "=" + encodeURIComponent(value) + "; expires=" + exp + "; path=/; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    } catch (e) { /* cookies disabled */ }
  }

  function store(key, value) {
    try { if (value === null) { localStorage.removeItem(key); } else { localStorage.setItem(key, value); } }
    catch (e) { /* storage disabled */ }
  }

  function load(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  function visitorId() {
    var v = getCookie(VID_KEY) || load(VID_KEY) || "";
    return /^[A-Za-z0-9._-]{8,64}$/.test(v) ? v : "";
  }

  function saveVisitor(v) {
    if (!v) { return; }
    setCookie(VID_KEY, v, 365);
    store(VID_KEY, v);
  }

  function gaClientId() {
    // _ga = GA1.1.1234567890.1699999999 -> 1234567890.1699999999
    var m = /^GA\d+\.\d+\.(\d+\.\d+)$/.exec(getCookie("_ga"));
    return m ? m[1] : "";
  }

  function params() {
    var out = {}, q = (location.search || "").replace(/^\?/, "").split("&");
    for (var i = 0; i < q.length; i++) {
      if (!q[i]) { continue; }
      var kv = q[i].split("="), k, v;
      try {
        k = decodeURIComponent(kv[0].replace(/\+/g, " "));
        v = decodeURIComponent((kv[1] || "").replace(/\+/g, " "));
      } catch (e) { continue; }
      if (/^(utm_(source|medium|campaign|term|content)|gclid|yclid|keyword)$/.test(k)) { out[k] = v.slice(0, 200); }
    }
    return out;
  }

  // ------------------------------------------------------------------ replacing
  var PHONE_RX = /\+?\d[\d\s().\u00a0\u2010-\u2015-]{5,}\d/g;
  var SKIP = { SCRIPT: 1, STYLE: 1, NOSCRIPT: 1, TEXTAREA: 1, INPUT: 1, SELECT: 1, OPTION: 1, TEMPLATE: 1 };

  function matches(candidate, known) {
    var d = digits(candidate);
    if (d.length < 7) { return 0; }
    for (var i = 0; i < known.length; i++) {
      var k = known[i];
      if (!k || d.length > k.length + 1) { continue; }
      var n = Math.min(10, d.length, k.length);
      if (d.slice(-n) === k.slice(-n)) { return n; }
    }
    return 0;
  }

  // Replace the last n digits of `text` by the last n digits of `num`, keeping every other character.
  function rewrite(text, num, n) {
    var nd = digits(num), out = text.split(""), j = nd.length - 1, left = n;
    for (var i = out.length - 1; i >= 0 && left > 0 && j >= 0; i--) {
      if (out[i] >= "0" && out[i] <= "9") { out[i] = nd.charAt(j--); left--; }
    }
    return out.join("");
  }

  function replaceIn(root, known, num) {
    var count = 0;
    if (!root || !num) { return 0; }
    var walker = document.createTreeWalker(root, 4 /* SHOW_TEXT */, null, false), node, nodes = [];
    while ((node = walker.nextNode())) {
      var p = node.parentNode;
      if (p && !SKIP[p.nodeName] && PHONE_RX.test(node.nodeValue)) { nodes.push(node); }
      PHONE_RX.lastIndex = 0;
    }
    for (var i = 0; i < nodes.length; i++) {
      var before = nodes[i].nodeValue;
      var after = before.replace(PHONE_RX, function (m) {
        var n = matches(m, known);
        return n ? rewrite(m, num, n) : m;
      });
      if (after !== before) { nodes[i].nodeValue = after; count++; }
    }
    var links = root.querySelectorAll ? root.querySelectorAll('a[href^="tel:"], a[href^="TEL:"]') : [];
    if (root.nodeName === "A" && /^tel:/i.test(root.getAttribute("href") || "")) { links = [root]; }
    for (var l = 0; l < links.length; l++) {
      var href = links[l].getAttribute("href"), tel = href.slice(4), n = matches(tel, known);
      if (n) { links[l].setAttribute("href", "tel:" + rewrite(tel, num, n)); count++; }
    }
    return count;
  }

  // ------------------------------------------------------------------ main
  var script = findScript();
  if (!script) { return; }
  var cfg = {
    project: script.getAttribute("data-project") || "",
    siteNumber: script.getAttribute("data-default") || "",
    selector: script.getAttribute("data-selector") || "",
    pool: script.getAttribute("data-pool") || "",
    promoSelector: script.getAttribute("data-promo-selector") || "[data-ct-promo]",
    timeout: parseInt(script.getAttribute("data-timeout"), 10) || 2000,
    lang: script.getAttribute("data-lang") || "",
    cbDelay: script.getAttribute("data-callback-delay"),
    heartbeat: Math.max(10, parseInt(script.getAttribute("data-heartbeat"), 10) || 30)
  };
  var base = script.getAttribute("data-server") || "";
  if (!base) { try { base = new URL(script.src, location.href).origin; } catch (e) { base = ""; } }
  base = base.replace(/\/+$/, "");

  var known = [];     // digit strings currently on the page that stand for "our number"
  var lastActive = Date.now();

  function roots() {
    if (!cfg.selector) { return [document.body]; }
    try { return Array.prototype.slice.call(document.querySelectorAll(cfg.selector)); }
    catch (e) { return [document.body]; }
  }

  var apply = safe(function (num) {
    if (!num) { return; }
    var nd = digits(num);
    var list = known.filter(function (k) { return k && k !== nd; });
    var total = 0, rs = roots();
    for (var i = 0; i < rs.length; i++) { total += replaceIn(rs[i], list, num); }
    if (known.indexOf(nd) < 0) { known.push(nd); }
    state.number = num;
    state.replaced = total;
    document.documentElement.setAttribute("data-ct-number", num);
  });

  var showPromo = safe(function (code) {
    state.promo = code || null;
    if (!code) { return; }
    var els = document.querySelectorAll(cfg.promoSelector);
    for (var i = 0; i < els.length; i++) {
      els[i].textContent = code;      // text, never HTML
      els[i].removeAttribute("hidden");
    }
  });

  function finish(status) {
    state.status = status;
    try { document.documentElement.setAttribute("data-ct-dni", status); } catch (e) { /* ignore */ }
  }

  function post(path, body, cb, ms) {
    var done = false;
    function end(err, data) { if (!done) { done = true; cb(err, data); } }
    try {
      var ctl = window.AbortController ? new AbortController() : null;
      var timer = setTimeout(function () { if (ctl) { ctl.abort(); } end("timeout"); }, ms || cfg.timeout);
      window.fetch(base + path, {
        method: "POST", mode: "cors", credentials: "omit", keepalive: false,
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify(body), signal: ctl ? ctl.signal : undefined
      }).then(function (r) {
        return r.json().then(function (d) { return { ok: r.ok, data: d }; });
      }).then(function (res) {
        clearTimeout(timer);
        end(res.ok ? null : (res.data && res.data.error) || "error", res.data);
      }, function (e) { clearTimeout(timer); end(String(e)); });
    } catch (e) { end(String(e)); }
  }

  function cached() {
    try {
      var c = JSON.parse(load(CACHE_KEY) || "null");
      return c && c.project === cfg.project && c.until > Date.now() ? c : null;
    } catch (e) { return null; }
  }

  var onAnswer = safe(function (err, data) {
    if (data && data.default) { known.push(digits(data.default)); }
    if (err || !data) {
      var c = cached();
      if (c) { apply(c.number); finish("cached"); } else { finish("fallback"); }
      return;
    }
    saveVisitor(data.visitor_id);
    state.visitorId = data.visitor_id || state.visitorId;
    state.kind = data.kind;
    if (data.number) {
      apply(data.number);
      if (data.kind === "pool") {
        store(CACHE_KEY, JSON.stringify({ project: cfg.project, number: data.number,
          until: Date.now() + (data.hold_seconds || 0) * 1000 }));
      }
    }
    showPromo(data.promo);
    widget(data.widget_config);
    finish(data.kind === "pool" ? "ready" : (data.kind || "ready"));
    if (data.kind === "pool") { scheduleHeartbeat(!!data.provisional, data.hold_seconds); }
  });

  var assign = safe(function () {
    var body = params();
    body.project = cfg.project;
    body.visitor_id = visitorId();
    body.ga_client_id = gaClientId();
    body.referrer = (document.referrer || "").slice(0, 1000);
    body.landing_page = (location.href || "").slice(0, 1000);
    body.snippet = VERSION;
    body.origin = pageOrigin();
    body.page = (location.pathname || "/").slice(0, 500);
    if (cfg.pool) { body.pool = cfg.pool; }
    state.visitorId = body.visitor_id || null;
    post("/api/dni/assign", body, onAnswer);
  });

  function pageOrigin() {
    return location.origin || (location.protocol + "//" + location.host);
  }

  // "the snippet ran here" when no number request says it: fire and forget
  var ping = safe(function () {
    var url = base + "/api/dni/ping", body = JSON.stringify({ project: cfg.project, snippet: VERSION,
      origin: pageOrigin(), page: (location.pathname || "/").slice(0, 500) });
    if (window.fetch) {
      window.fetch(url, { method: "POST", mode: "cors", credentials: "omit", keepalive: true,
        headers: { "Content-Type": "text/plain;charset=UTF-8" }, body: body }).then(null, function () {});
    } else if (!(navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: "text/plain;charset=UTF-8" })))) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url, true);
      xhr.setRequestHeader("Content-Type", "text/plain;charset=UTF-8");
      xhr.send(body);
    }
    state.pinged = true;
  });

  var hbTimer = null;
  // confirming: the number is still provisional; it is confirmed whatever the visitor's activity
  var beat = safe(function (confirming) {
    if (document.hidden || (!confirming && Date.now() - lastActive > cfg.heartbeat * 1000 * 2)) { return; }
    post("/api/dni/heartbeat", { project: cfg.project, visitor_id: state.visitorId }, safe(function (err, data) {
      if (!err && data && !data.number) { clearInterval(hbTimer); hbTimer = null; assign(); }
      else if (!err && data) {
        state.provisional = false;
        var c = cached();
        if (c) { c.until = Date.now() + (data.hold_seconds || 0) * 1000; store(CACHE_KEY, JSON.stringify(c)); }
      }
    }));
  });

  function scheduleHeartbeat(provisional, holdSeconds) {
    state.provisional = provisional;
    if (provisional) {
      setTimeout(function () { beat(true); }, Math.max(1, Math.min(5, (holdSeconds || 60) / 4)) * 1000);
    }
    if (hbTimer) { return; }
    hbTimer = setInterval(function () { beat(state.provisional); }, cfg.heartbeat * 1000);
  }

  try {
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && state.provisional && hbTimer) { beat(true); }
    });
  } catch (e) { /* ignore */ }

  var markActive = function () { lastActive = Date.now(); };
  ["mousemove", "keydown", "scroll", "touchstart", "click"].forEach(function (ev) {
    try { window.addEventListener(ev, markActive, { passive: true }); } catch (e) { /* ignore */ }
  });

  // Content added later (menus, pop-ups) gets the number too.
  var observe = safe(function () {
    if (!window.MutationObserver) { return; }
    var pending = false;
    new MutationObserver(function () {
      if (pending || !state.number) { return; }
      pending = true;
      setTimeout(safe(function () { pending = false; apply(state.number); }), 50);
    }).observe(document.body, { childList: true, subtree: true });
  });

  try {
    window.addEventListener("pageshow", function (e) { if (e.persisted) { ping(); } });
  } catch (e) { /* ignore */ }

  // ------------------------------------------------------------------ callback widget
  var TEXT = {
    en: { title: "We will call you back", label: "Your phone number", send: "Call me", close: "Close",
      sending: "Sending…", now: "Thank you! We are calling you now.", at: "Thank you! We will call you at {t}.",
      day: "Thank you! We will call you on {t}.", empty: "Enter your phone number.",
      invalid: "Check the number: it does not look like a phone number.",
      region: "We do not call numbers of this country.", type: "Enter a mobile or landline number.",
      busy: "Too many requests. Please try again later.", failed: "Could not send the request. Please try again." },
    ru: { title: "Мы вам перезвоним", label: "Ваш номер телефона", send: "Позвоните мне", close: "Закрыть",
      sending: "Отправляем…", now: "Спасибо! Сейчас мы вам позвоним.", at: "Спасибо! Мы позвоним вам в {t}.",
      day: "Спасибо! Мы позвоним вам {t}.", empty: "Введите номер телефона.",
      invalid: "Проверьте номер: он не похож на номер телефона.",
      region: "Мы не звоним на номера этой страны.", type: "Укажите мобильный или городской номер.",
      busy: "Слишком много запросов. Попробуйте позже.", failed: "Не удалось отправить запрос. Попробуйте ещё раз." }
  };
  // the endpoint's error codes -> TEXT keys
  var ERR = { empty: "empty", characters: "invalid", too_long: "invalid", invalid: "invalid", region: "region",
    premium_rate: "type", shared_cost: "type", toll_free: "type", not_personal: "type", client_limit: "busy",
    visitor_limit: "busy", hourly_limit: "busy", "too many requests": "busy" };
  var CSS = ":host{all:initial}[hidden]{display:none!important}" +
    ".b{position:fixed;right:16px;bottom:16px;box-sizing:border-box;width:300px;max-width:calc(100vw - 32px);" +
    "padding:16px;background:#fff;color:#1a1a1a;border:1px solid #bbb;border-radius:8px;" +
    "box-shadow:0 4px 16px rgba(0,0,0,.25);font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;" +
    "text-align:left;animation:ct .2s ease-out}@keyframes ct{from{opacity:0;transform:translateY(8px)}}" +
    "@media (prefers-reduced-motion:reduce){.b{animation:none}}" +
    ".t{margin:0 32px 8px 0;font-weight:600;font-size:16px}label{display:block;margin:0 0 4px}" +
    "input{box-sizing:border-box;display:block;width:100%;margin:0 0 8px;padding:8px;font:inherit;color:inherit;" +
    "background:#fff;border:1px solid #767676;border-radius:4px}input[aria-invalid=true]{border-color:#b00020}" +
    "button{font:inherit;cursor:pointer;margin:0}.go{width:100%;padding:8px;color:#fff;background:#0b57d0;" +
    "border:0;border-radius:4px}.x{position:absolute;top:6px;right:6px;width:32px;height:32px;padding:0;" +
    "color:inherit;background:none;border:0;font-size:22px;line-height:1}" +
    ":focus-visible{outline:2px solid #0b57d0;outline-offset:2px}.s{margin:8px 0 0}.s:empty{margin:0}" +
    ".e{color:#b00020}";
  var cb = { cfg: null, box: null, pending: false, busy: false };
  state.callback = "off";

  function sessionValue(key, value) {
    try {
      if (value !== undefined) { sessionStorage.setItem(key, String(value)); }
      return sessionStorage.getItem(key);
    } catch (e) { return null; }
  }

  function build() {
    var t = cb.text, host = document.createElement("calltracking-callback");
    host.setAttribute("style", "all:initial!important;position:fixed!important;top:0!important;left:0!important;" +
      "width:0!important;height:0!important;z-index:2147483000!important");
    var root = host.attachShadow({ mode: "open" });
    root.innerHTML = "<style>" + CSS + "</style><div class=b role=dialog aria-labelledby=t hidden>" +
      "<button type=button class=x>\u00d7</button><p class=t id=t></p><form novalidate><label for=p></label>" +
      "<input id=p name=tel type=tel autocomplete=tel inputmode=tel maxlength=32 aria-describedby=s>" +
      "<button type=submit class=go></button></form><p class=s id=s role=status aria-live=polite></p></div>";
    function $(sel) { return root.querySelector(sel); }
    cb.root = root; cb.box = $(".b"); cb.form = $("form"); cb.input = $("input"); cb.status = $(".s"); cb.x = $(".x");
    cb.x.setAttribute("aria-label", t.close);
    $(".t").textContent = t.title;
    $("label").textContent = t.label;
    $(".go").textContent = t.send;
    cb.x.addEventListener("click", close);
    root.addEventListener("keydown", function (e) { if (e.key === "Escape" || e.key === "Esc") { close(); } });
    cb.form.addEventListener("submit", function (e) { e.preventDefault(); send(); });
    document.body.appendChild(host);
  }

  // Show the widget; focus: move the focus into it (a request of the visitor's, not the timer's).
  var open = safe(function (focus) {
    if (!cb.cfg) { cb.pending = cb.pending || !!focus; return false; }
    if (!cb.box) { build(); }
    clearTimeout(cb.timer);
    sessionValue("_ct_cb_done", 1);
    if (cb.box.hidden) {
      cb.back = document.activeElement;
      cb.form.hidden = false;
      say("", false);
      cb.box.hidden = false;
      state.callback = "open";
    }
    if (focus) { cb.input.focus(); }
    return true;
  });

  var close = safe(function () {
    if (!cb.box || cb.box.hidden) { return; }
    var inside = !!cb.root.activeElement;
    cb.box.hidden = true;
    state.callback = "closed";
    if (inside && cb.back && cb.back.focus) { cb.back.focus(); }
  });

  function say(text, bad, invalid) {
    cb.status.textContent = text;
    cb.status.className = bad ? "s e" : "s";
    cb.input.setAttribute("aria-invalid", invalid ? "true" : "false");
  }

  function when(at) {
    var d = new Date(at), o = { hour: "2-digit", minute: "2-digit" }, nav = navigator.language || "";
    var today = d.toDateString() === new Date().toDateString();
    if (!today) { o.day = "numeric"; o.month = "long"; }
    var text;
    try { text = d.toLocaleString(nav.slice(0, 2) === cb.lang ? nav : cb.lang, o); } catch (e) { text = d.toLocaleString(); }
    return cb.text[today ? "at" : "day"].replace("{t}", text);
  }

  var send = safe(function () {
    var t = cb.text, v = cb.input.value.replace(/^\s+|\s+$/g, "");
    if (!v) { say(t.empty, true, true); return; }
    if (!/^\+?[\d\s().\u2010-\u2015-]{5,32}$/.test(v) || digits(v).length < 5) { say(t.invalid, true, true); return; }
    if (cb.busy) { return; }
    cb.busy = true;
    say(t.sending, false);
    post("/api/dni/callback", { project: cfg.project, visitor_id: state.visitorId, phone: v }, safe(function (err, data) {
      cb.busy = false;
      if (!err && data && data.status) {
        state.callback = "sent";
        cb.form.hidden = true;
        say(data.status === "scheduled" && data.at ? when(data.at) : t.now, false);
        cb.x.focus();
        return;
      }
      var key = ERR[data && data.error] || ERR[err] || "failed";
      say(t[key], true, key !== "busy" && key !== "failed");
      if (key !== "busy" && key !== "failed") { cb.input.focus(); }
    }), 10000);
  });

  var widget = safe(function (wc) {
    if (!wc || !wc.enabled || cb.cfg || !document.body.attachShadow) { return; }
    var lang = (cfg.lang || document.documentElement.lang || navigator.language || "en").slice(0, 2).toLowerCase();
    cb.lang = TEXT[lang] ? lang : "en";
    cb.text = TEXT[cb.lang];
    cb.cfg = wc;
    state.callback = "ready";
    document.addEventListener("click", function (e) {
      var el = e.target && e.target.closest ? e.target.closest("[data-calltracking-callback]") : null;
      if (el) { e.preventDefault(); open(true); }
    });
    if (cb.pending) { open(true); }
    var delay = cfg.cbDelay === null ? (typeof wc.delay_seconds === "number" ? wc.delay_seconds : 60) :
      parseFloat(cfg.cbDelay);
    // the visit's first page view in this tab: the delay counts time on the site, not on this page
    var t0 = parseFloat(sessionValue("_ct_cb_t0")) || parseFloat(sessionValue("_ct_cb_t0", Date.now())) || Date.now();
    if (delay >= 0 && !sessionValue("_ct_cb_done")) {
      cb.timer = setTimeout(function () { open(false); }, Math.max(0, delay * 1000 - (Date.now() - t0)));
    }
  });

  var api = window.calltracking = window.calltracking || {};
  // window.calltracking.callback(): show the widget with the focus in it (true when shown)
  api.callback = function () { return open(true) === true; };

  var start = safe(function () {
    if (cfg.project && !window.fetch) { ping(); }
    if (!cfg.project || !window.fetch || !document.body) { finish("fallback"); return; }
    if (cfg.siteNumber) { known.push(digits(cfg.siteNumber)); }
    assign();
    observe();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})(typeof window !== "undefined" ? window : null, typeof document !== "undefined" ? document : null);
