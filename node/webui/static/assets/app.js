// Meshwork web desktop. Plain JavaScript, no build step, no other origin:
// everything comes from this daemon's HTTP API (node/API.md). Live updates
// come only from the EventSource on /api/v1/events; nothing polls.
"use strict";

(function () {
  const API = "/api/v1";

  // ---- state ---------------------------------------------------------

  const state = {
    self: null, // status object
    devices: [], // [Device]
    presence: [], // [{device,name,online,viewing}]
    folders: [], // [FolderInfo]
    folder: null, // name of the open folder
    dir: "", // directory shown in the browser ("" = root, else "a/b/")
    files: [], // [File] of the open folder
    history: null, // path whose history is shown
    versions: null, // its kept versions (null: not loaded yet)
    news: [],
    es: null, // EventSource
    esBackoff: 1000,
  };

  // ---- small helpers -------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k.startsWith("data")) e.setAttribute(k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), String(v));
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  class HTTPError extends Error {
    constructor(status, msg) {
      super(msg);
      this.status = status;
    }
  }

  // api calls the JSON API; a 401 anywhere sends the page to the login form.
  async function api(method, path, body) {
    const opt = { method, headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      opt.body = JSON.stringify(body);
      opt.headers["Content-Type"] = "application/json";
    }
    let r;
    try {
      r = await fetch(API + path, opt);
    } catch (e) {
      throw new HTTPError(0, "the daemon did not answer (" + e.message + "); is meshd running?");
    }
    if (r.status === 401) {
      showLogin();
      throw new HTTPError(401, "not logged in");
    }
    const text = await r.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = text;
      }
    }
    if (!r.ok) {
      const msg = data && data.error ? data.error : r.status + " " + r.statusText;
      throw new HTTPError(r.status, msg);
    }
    return data;
  }

  // putFile uploads a file's content with progress reports (fetch has
  // none for request bodies).
  function putFile(path, file, progress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open("PUT", API + path);
      x.setRequestHeader("Content-Type", "application/octet-stream");
      x.upload.onprogress = (ev) => {
        if (ev.lengthComputable && ev.total > 0) progress(ev.loaded / ev.total);
      };
      x.onerror = () => reject(new HTTPError(0, "upload failed: the daemon did not answer"));
      x.onload = () => {
        if (x.status === 401) {
          showLogin();
          reject(new HTTPError(401, "not logged in"));
          return;
        }
        let data = null;
        try {
          data = JSON.parse(x.responseText);
        } catch (e) {
          data = null;
        }
        if (x.status < 200 || x.status >= 300) {
          reject(new HTTPError(x.status, data && data.error ? data.error : x.status + " " + x.statusText));
          return;
        }
        resolve(data);
      };
      x.send(file);
    });
  }

  function enc(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  function fileURL(folder, path) {
    return API + "/folders/" + encodeURIComponent(folder) + "/files/" + enc(path);
  }

  function size(n) {
    if (n === null || n === undefined) return "";
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + u[i];
  }

  // date parses an API time; null for none (JSON null, or Go's zero time).
  function date(t) {
    if (!t) return null;
    const d = new Date(t);
    return isNaN(d) || d.getUTCFullYear() < 1971 ? null : d;
  }

  function when(t) {
    const d = date(t);
    if (!d) return "";
    return d.toLocaleString();
  }

  function ago(t) {
    const d = date(t);
    if (!d) return "never";
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 10) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return d.toLocaleDateString();
  }

  // since is an element showing how long ago t was ("seen 5 min ago");
  // ageAll redraws every such element as time passes.
  function since(tag, attrs, prefix, t) {
    const e = el(tag, Object.assign({ title: when(t) }, attrs), prefix + ago(t));
    e.dataset.time = t || "";
    e.dataset.prefix = prefix;
    return e;
  }

  function ageAll() {
    for (const e of document.querySelectorAll("[data-time]")) {
      if (e.dataset.time) e.textContent = e.dataset.prefix + ago(e.dataset.time);
    }
  }

  // syncList makes box's children the given rows ({key, sig, make}) while
  // leaving every row whose key and signature are unchanged untouched, so
  // that a refresh never replaces what the user is about to click.
  function syncList(box, rows) {
    const want = new Map(rows.map((r) => [r.key, r.sig]));
    for (const c of [...box.children]) {
      if (!want.has(c._key) || want.get(c._key) !== c._sig) c.remove();
    }
    const have = new Map([...box.children].map((c) => [c._key, c]));
    let at = box.firstElementChild;
    for (const r of rows) {
      let n = have.get(r.key);
      if (!n) {
        n = r.make();
        n._key = r.key;
        n._sig = r.sig;
      }
      if (n === at) {
        at = at.nextElementSibling;
      } else {
        box.insertBefore(n, at);
      }
    }
    while (at) {
      const next = at.nextElementSibling;
      at.remove();
      at = next;
    }
  }

  function sig(...parts) {
    return JSON.stringify(parts);
  }

  function base(path) {
    const i = path.lastIndexOf("/");
    return i < 0 ? path : path.slice(i + 1);
  }

  let errTimer = 0;
  function showError(e) {
    if (e instanceof HTTPError && e.status === 401) return;
    const box = $("error");
    box.textContent = e && e.message ? e.message : String(e);
    box.hidden = false;
    clearTimeout(errTimer);
    errTimer = setTimeout(() => (box.hidden = true), 8000);
    // The daemon's refusals are shown above; anything else is a bug here.
    if (!(e instanceof HTTPError)) console.error(e);
  }

  // guarded runs an async action and reports its failure on the page.
  function guarded(fn) {
    return function (...args) {
      return Promise.resolve()
        .then(() => fn.apply(this, args))
        .catch(showError);
    };
  }

  // Coalesce refreshes that several events ask for at once.
  const pending = new Map();
  function soon(key, fn) {
    if (pending.has(key)) return;
    pending.set(
      key,
      setTimeout(() => {
        pending.delete(key);
        guarded(fn)();
      }, 50)
    );
  }

  // ---- login ---------------------------------------------------------

  function showLogin() {
    closeEvents();
    document.body.dataset.state = "login";
    $("app").hidden = true;
    $("logout-form").hidden = true;
    $("login").hidden = false;
    $("login-token").focus();
  }

  function showApp() {
    document.body.dataset.state = "app";
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout-form").hidden = false;
  }

  async function login() {
    const err = $("login-error");
    err.hidden = true;
    const body = new URLSearchParams({ token: $("login-token").value.trim() });
    const r = await fetch("/login", { method: "POST", body, credentials: "same-origin" });
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try {
        msg = (await r.json()).error || msg;
      } catch (e) {
        /* not JSON */
      }
      err.textContent = r.status === 401 ? "Wrong token." : msg;
      err.hidden = false;
      return;
    }
    $("login-token").value = "";
    await boot();
  }

  // ---- boot and live events --------------------------------------------

  async function boot() {
    let st;
    try {
      st = await api("GET", "/status");
    } catch (e) {
      if (e.status !== 401) {
        document.body.dataset.state = "error";
        showError(e);
      }
      return;
    }
    showApp();
    setStatus(st);
    openFromHash();
    await loadAll();
    openEvents();
  }

  async function loadAll() {
    await loadStatus();
    if (!state.self.mesh_id) {
      // Not in a mesh yet: the mesh's lists do not exist; the first devices
      // event after `mesh init` or `mesh join` brings the page here again.
      state.devices = [];
      state.folders = [];
      state.news = [];
      renderDevices();
      renderFolders();
      renderNews();
      return;
    }
    await Promise.all([
      loadDevices(),
      loadFolders(),
      loadNews(),
      loadServices(),
      state.folder ? loadFiles() : null,
      state.history ? loadHistory() : null,
    ]);
  }

  function closeEvents() {
    if (state.es) {
      state.es.close();
      state.es = null;
    }
    setLive("closed");
  }

  function setLive(s) {
    const l = $("live");
    l.dataset.state = s;
    l.textContent = { open: "live", connecting: "connecting…", closed: "offline" }[s] || s;
  }

  // reconnect tries to reopen the event stream, waiting longer after each
  // failure (up to 30 s); a 401 leaves the page at the login form.
  function reconnect() {
    const wait = state.esBackoff;
    state.esBackoff = Math.min(wait * 2, 30000);
    setTimeout(async () => {
      if (state.es || document.body.dataset.state !== "app") return;
      try {
        await api("GET", "/status");
        await loadAll();
      } catch (e) {
        if (e.status !== 401) reconnect();
        return;
      }
      openEvents();
    }, wait);
  }

  // openEvents (re)opens the event stream; viewing= tells the mesh which
  // folder this page shows (presence), so it is reopened when that changes.
  function openEvents() {
    closeEvents();
    const q = state.folder ? "?viewing=" + encodeURIComponent(state.folder) : "";
    const es = new EventSource(API + "/events" + q);
    state.es = es;
    setLive("connecting");
    es.onopen = () => {
      state.esBackoff = 1000;
      setLive("open");
    };
    es.onerror = () => {
      if (state.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error such as 401, or a daemon
        // that answers but not with the stream): find out which, and
        // reconnect after a while.
        setLive("closed");
        state.es = null;
        reconnect();
      } else {
        setLive("connecting");
      }
    };
    const on = (name, fn) =>
      es.addEventListener(name, (ev) => {
        let data = null;
        try {
          data = ev.data ? JSON.parse(ev.data) : null;
        } catch (e) {
          return;
        }
        guarded(fn)(data);
      });
    on("change", onChange);
    on("devices", (devs) => {
      if (!state.self || !state.self.mesh_id) {
        soon("all", loadAll);
      } else if (Array.isArray(devs)) {
        state.devices = devs;
        renderDevices();
      } else soon("devices", loadDevices);
    });
    on("folder", onFolder);
    on("news", (n) => {
      if (n && n.id && !state.news.some((x) => x.id === n.id)) {
        state.news.push(n);
        renderNews();
      }
    });
    on("presence", (p) => {
      if (Array.isArray(p)) {
        state.presence = p;
        renderDevices();
      }
    });
    on("reset", () => soon("all", loadAll));
  }

  function onChange(c) {
    if (!c || !c.object) return;
    if (c.object === state.folder) {
      soon("files", loadFiles);
      if (state.history) soon("history", loadHistory);
    }
    if (c.object === "devices") soon("devices", loadDevices);
    if (c.object === "news") soon("news", loadNews);
    // The catalog lists the mesh's folders: one was added or removed.
    if (c.object === "catalog") soon("folders", loadFolders);
    if (state.folders.some((f) => f.name === c.object)) soon("folders", loadFolders);
  }

  function onFolder(fi) {
    if (!fi || !fi.name) return;
    const i = state.folders.findIndex((f) => f.name === fi.name);
    if (i < 0) {
      soon("folders", loadFolders);
      return;
    }
    state.folders[i] = fi;
    renderFolders();
    if (fi.name === state.folder) {
      renderBrowserState();
      // Content arriving changes "local" of the files listed.
      soon("files", loadFiles);
    }
  }

  // ---- status and devices -----------------------------------------------

  async function loadStatus() {
    setStatus(await api("GET", "/status"));
  }

  function setStatus(st) {
    state.self = st;
    const name = st.name || "(not in a mesh)";
    $("self-name").textContent = name;
    document.title = "Meshwork · " + name;
    const mesh = st.mesh_id ? "mesh " + st.mesh_id.slice(0, 12) + "… · " : "";
    $("no-mesh").hidden = !!st.mesh_id;
    for (const id of ["devices", "folders", "invite", "services", "news"]) $(id).hidden = !st.mesh_id;
    $("mesh-summary").dataset.mesh = mesh;
    renderSummary();
  }

  // renderSummary counts the devices online (this one included) from the
  // device list, which the devices event keeps current.
  function renderSummary() {
    const s = $("mesh-summary");
    const n = state.devices.length;
    const on = state.devices.filter((d) => d.online || d.self).length;
    s.textContent = n ? (s.dataset.mesh || "") + on + " of " + n + " online" : "";
  }

  async function loadDevices() {
    const [devs, pres] = await Promise.all([
      api("GET", "/devices"),
      api("GET", "/objects/presence/items").catch(() => null),
    ]);
    state.devices = devs || [];
    if (Array.isArray(pres)) state.presence = presenceFromItems(pres);
    renderDevices();
  }

  // presenceFromItems reads the presence view's items (one per device; the
  // text is JSON {"device","name","online","viewing"} when it parses).
  function presenceFromItems(items) {
    const out = [];
    for (const it of items) {
      try {
        const p = JSON.parse(it.text);
        if (p && p.device) out.push(p);
      } catch (e) {
        /* not JSON: no presence detail */
      }
    }
    return out;
  }

  function viewingOf(id) {
    const p = state.presence.find((x) => x.device === id);
    return p && Array.isArray(p.viewing) ? p.viewing : [];
  }

  function renderDevices() {
    renderSummary();
    const list = $("device-list");
    const ring = $("ring");
    const devs = state.devices.slice().sort((a, b) => (b.self - a.self) || a.name.localeCompare(b.name));
    const others = devs.filter((d) => !d.self);
    syncList(list, devs.map((d) => {
      const path = d.self ? "this device" : d.online ? d.connection || "connected" : "offline";
      const viewing = viewingOf(d.id);
      return { key: d.id, sig: sig(d, viewing), make: () =>
        el(
          "li",
          {
            class: "device " + (d.online || d.self ? "on" : "off"),
            dataTestid: "device",
            dataId: d.id,
            dataName: d.name,
            dataOnline: d.online || d.self ? "true" : "false",
            dataSelf: d.self ? "true" : "false",
            dataConnection: d.connection || "",
          },
          el("span", { class: "dot", "aria-hidden": "true" }),
          el("span", { class: "grow" },
            el("b", { class: "name", text: d.name || d.id.slice(0, 12) }),
            " ",
            el("small", { class: "muted", text: d.role }),
            el("br"),
            el("small", { class: "path", dataTestid: "device-path", text: path }),
            d.transport && d.online && !d.self ? el("small", { class: "muted", text: " · " + d.transport }) : null,
            d.rtt_ms !== null && d.rtt_ms !== undefined && d.online ? el("small", { class: "muted", text: " · " + Math.round(d.rtt_ms) + " ms" }) : null,
            viewing.length ? el("small", { class: "viewing", dataTestid: "device-viewing", text: " · viewing " + viewing.join(", ") }) : null
          ),
          d.online || d.self
            ? el("small", { class: "seen", dataTestid: "device-seen", text: "online" })
            : since("small", { class: "seen", dataTestid: "device-seen" }, "seen ", d.last_seen)
        ) };
    }));
    // The ring: this device in the middle, the others around it.
    const ringSig = sig(devs.map((d) => [d.name, d.self, d.online, d.connection]));
    if (ring._sig === ringSig) return;
    ring._sig = ringSig;
    ring.replaceChildren();
    const self = devs.find((d) => d.self);
    if (self) ring.append(el("span", { class: "node self on", title: self.name, text: self.name }));
    others.forEach((d, i) => {
      const a = (360 / others.length) * i - 90;
      const n = el("span", {
        class: "node " + (d.online ? "on" : "off") + (d.connection === "relayed" ? " relayed" : ""),
        title: d.name + (d.online ? " (" + (d.connection || "online") + ")" : " (offline)"),
        text: d.name,
      });
      n.style.setProperty("--a", a + "deg");
      const line = el("span", { class: "spoke " + (d.online ? "on" : "off") + (d.connection === "relayed" ? " relayed" : "") });
      line.style.setProperty("--a", a + "deg");
      ring.append(line, n);
    });
  }

  // ---- folders ---------------------------------------------------------------

  async function loadFolders() {
    state.folders = (await api("GET", "/folders")) || [];
    renderFolders();
    if (state.folder) renderBrowserState();
  }

  function folderState(f) {
    if (!f.path) return "not synced here (mesh folder join " + f.name + " DIR)";
    const pct = Math.floor((f.in_sync || 0) * 100);
    let s = f.in_sync >= 1 ? "in sync" : "syncing " + pct + "%";
    const tr = (f.transferring || []).length;
    if (tr) s += " · " + tr + " transferring";
    if (f.conflicts) s += " · " + f.conflicts + " conflict" + (f.conflicts > 1 ? "s" : "");
    if (f.error) s += " · " + f.error.kind;
    return s;
  }

  // folderError is the one line saying why changes are not written here
  // (FolderInfo.error: disk full, permission denied, a file refused), or "".
  function folderError(f) {
    const e = f && f.error;
    if (!e) return "";
    const files = e.files === 1 ? "1 file" : (e.files || 0) + " files";
    return "⚠ " + e.kind + ": " + files + " not written here (last: " + e.path + ")";
  }

  function renderFolders() {
    const list = $("folder-list");
    $("no-folders").hidden = state.folders.length > 0;
    syncList(list, state.folders
      .slice()
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((f) => ({ key: f.name, sig: sig(f, f.name === state.folder), make: () =>
          el(
            "li",
            {
              class: "folder" + (f.name === state.folder ? " open" : ""),
              dataTestid: "folder",
              dataFolder: f.name,
              dataInSync: f.in_sync,
            },
            el("span", { class: "grow" },
              f.path
                ? el("a", { href: "#folder=" + encodeURIComponent(f.name), class: "name", dataTestid: "folder-open", text: f.name })
                : el("span", { class: "name", title: "join it here with: mesh folder join " + f.name + " DIR", text: f.name }),
              el("br"),
              el("small", { class: "muted", dataTestid: "folder-state", text: folderState(f) }),
              f.error && el("br"),
              f.error && el("small", { class: "bad", dataTestid: "folder-error", dataKind: f.error.kind, title: f.error.error + " (" + f.error.time + ")", text: folderError(f) }),
              el("br"),
              el("small", { class: "muted", text: f.items + " items · " + size(f.bytes) + (f.path ? " · " + f.path : "") })
            ),
            el("progress", { max: 1, value: f.in_sync || 0, dataTestid: "folder-progress", title: Math.floor((f.in_sync || 0) * 100) + "%" })
          ) })));
  }

  function renderBrowserState() {
    const f = state.folders.find((x) => x.name === state.folder);
    let text = f ? folderState(f) : "";
    // The files on their way here. (API.md does not spell out a transfer's
    // fields; meshd sends Path, Done and Total.)
    const tr = (f && f.transferring) || [];
    if (tr.length) {
      const one = (t) => {
        const path = t.path || t.Path || "?";
        const done = t.done ?? t.Done ?? 0;
        const total = t.total ?? t.Total ?? 0;
        return base(path) + (total > 0 ? " " + Math.floor((100 * done) / total) + "%" : "");
      };
      text += ": " + tr.slice(0, 3).map(one).join(", ") + (tr.length > 3 ? " and " + (tr.length - 3) + " more" : "");
    }
    $("browser-state").textContent = text;
    const be = $("browser-error");
    be.textContent = folderError(f);
    be.title = f && f.error ? f.error.error : "";
    be.hidden = !(f && f.error);
  }

  // ---- the file browser -----------------------------------------------

  function openFromHash() {
    const m = /^#folder=([^&]*)(?:&dir=([^&]*))?(?:&history=([^&]*))?/.exec(location.hash);
    const folder = m ? decodeURIComponent(m[1]) : null;
    const dir = m && m[2] ? decodeURIComponent(m[2]) : "";
    const hist = m && m[3] ? decodeURIComponent(m[3]) : null;
    const changed = folder !== state.folder;
    state.folder = folder;
    state.dir = dir;
    if ((folder ? hist : null) !== state.history) {
      state.versions = null;
      const st = $("history-status");
      st.textContent = "";
      delete st.dataset.state;
    }
    state.history = folder ? hist : null;
    if (changed) state.files = [];
    $("browser").hidden = !folder;
    $("history").hidden = !state.history;
    if (folder) $("browser-title").textContent = folder;
    renderFolders();
    renderFiles();
    return changed;
  }

  function setHash(folder, dir, hist) {
    let h = "";
    if (folder) {
      h = "#folder=" + encodeURIComponent(folder);
      if (dir) h += "&dir=" + encodeURIComponent(dir);
      if (hist) h += "&history=" + encodeURIComponent(hist);
    }
    if (h === location.hash) return;
    if (h) {
      location.hash = h; // the hashchange event runs onHash
    } else {
      history.pushState(null, "", location.pathname + location.search);
      onHash();
    }
  }

  const onHash = guarded(async () => {
    if (document.body.dataset.state !== "app") return;
    const folderChanged = openFromHash();
    if (folderChanged) openEvents();
    const jobs = [];
    if (state.folder) jobs.push(loadFiles());
    if (state.history) jobs.push(loadHistory());
    else $("version-list").replaceChildren();
    await Promise.all(jobs);
  });

  async function loadFiles() {
    const folder = state.folder;
    if (!folder) return;
    const files = await api("GET", "/folders/" + encodeURIComponent(folder) + "/files");
    if (folder !== state.folder) return; // switched meanwhile
    state.files = files || [];
    renderBrowserState();
    renderFiles();
    renderHistory();
  }

  function renderFiles() {
    const tbody = $("file-list");
    const crumbs = $("crumbs");
    if (!state.folder) {
      tbody.replaceChildren();
      crumbs.replaceChildren();
      crumbs._sig = "";
      return;
    }
    const showDeleted = $("show-deleted").checked;
    // Breadcrumbs.
    const crumbSig = sig(state.folder, state.dir);
    if (crumbs._sig !== crumbSig) {
      crumbs._sig = crumbSig;
      crumbs.replaceChildren();
      crumbs.append(el("a", { href: "#", dataTestid: "crumb", dataDir: "", onclick: go(""), text: state.folder }));
      let acc = "";
      for (const part of state.dir.split("/").filter(Boolean)) {
        acc += part + "/";
        crumbs.append(" / ", el("a", { href: "#", dataTestid: "crumb", dataDir: acc, onclick: go(acc), text: part }));
      }
    }
    // Children of the current directory; a file deeper down implies its
    // directory even when the directory item is not listed.
    const rows = new Map();
    for (const f of state.files) {
      if (!f.path.startsWith(state.dir) || f.path === state.dir) continue;
      const rest = f.path.slice(state.dir.length);
      const slash = rest.indexOf("/");
      if (slash >= 0) {
        const d = state.dir + rest.slice(0, slash);
        if (!rows.has(d)) rows.set(d, { path: d, dir: true, implied: true });
        continue;
      }
      if (f.deleted && !showDeleted) continue;
      const prev = rows.get(f.path);
      if (!prev || prev.implied) rows.set(f.path, f);
    }
    const sorted = [...rows.values()].sort((a, b) => (b.dir - a.dir) || a.path.localeCompare(b.path));
    $("empty-dir").hidden = sorted.length > 0;
    syncList(tbody, sorted.map((f) => ({ key: f.path, sig: sig(state.folder, f), make: () => fileRow(f) })));
    renderConflicts();
  }

  function go(dir) {
    return (ev) => {
      ev.preventDefault();
      setHash(state.folder, dir, null);
    };
  }

  function fileRow(f) {
    const name = base(f.path);
    const tr = el("tr", {
      class: "file" + (f.dir ? " dir" : "") + (f.deleted ? " deleted" : "") + (f.conflict_of ? " conflict" : ""),
      dataTestid: f.dir ? "dir" : "file",
      dataPath: f.path,
      dataLocal: f.local ? "true" : "false",
      dataDeleted: f.deleted ? "true" : "false",
      dataSize: f.size,
    });
    let nameCell;
    if (f.dir) {
      nameCell = el("a", { href: "#", class: "name", onclick: go(f.path + "/"), text: name + "/" });
    } else if (f.deleted) {
      nameCell = el("span", { class: "name", text: name, title: "deleted" });
    } else if (f.local) {
      nameCell = el("a", { href: fileURL(state.folder, f.path), target: "_blank", rel: "noopener", class: "name", dataTestid: "open", text: name });
    } else {
      nameCell = el("span", { class: "name", title: "not on this device yet", text: name });
    }
    const actions = el("td", { class: "actions" });
    if (!f.dir) {
      if (f.local && !f.deleted) {
        actions.append(el("a", { href: fileURL(state.folder, f.path) + "?download=1", download: name, class: "button ghost", dataTestid: "download", title: "Download " + name, text: "download" }));
      }
      actions.append(
        el("button", {
          type: "button",
          class: "ghost",
          dataTestid: "history",
          title: "History of " + name,
          onclick: () => setHash(state.folder, state.dir, f.path),
          text: "history",
        })
      );
      if (!f.deleted) {
        actions.append(
          el("button", {
            type: "button",
            class: "ghost",
            dataTestid: "delete",
            title: "Delete " + name,
            onclick: guarded(async () => {
              if (!confirm("Delete " + f.path + "? It stays in its history.")) return;
              await api("DELETE", "/folders/" + encodeURIComponent(state.folder) + "/files/" + enc(f.path));
              soon("files", loadFiles);
            }),
            text: "delete",
          })
        );
      }
    }
    const sub = [];
    if (f.conflict_of) sub.push(el("small", { class: "bad", text: "conflict copy of " + f.conflict_of }));
    else if (!f.dir && !f.local && !f.deleted) sub.push(el("small", { class: "muted", dataTestid: "remote", text: "not here yet" }));
    if (f.deleted) sub.push(el("small", { class: "muted", text: "deleted" }));
    tr.append(
      el("td", {}, nameCell, sub.length ? el("br") : null, ...sub),
      el("td", { class: "num" }, f.dir ? "" : size(f.size)),
      date(f.mtime) && !f.dir ? since("td", { class: "hide-narrow" }, "", f.mtime) : el("td", { class: "hide-narrow" }),
      el("td", { class: "hide-narrow" }, f.by || ""),
      actions
    );
    return tr;
  }

  function renderConflicts() {
    const list = $("conflict-list");
    const folder = state.folder;
    const cs = state.files.filter((f) => f.conflict_of && !f.deleted);
    $("conflicts").hidden = cs.length === 0;
    const side = (f) => " (" + size(f.size) + (f.by ? ", by " + f.by : "") + (f.mtime ? ", " + when(f.mtime) : "") + ")";
    const link = (f) =>
      f.local ? el("a", { href: fileURL(folder, f.path), target: "_blank", rel: "noopener", text: base(f.path) }) : base(f.path);
    const rows = cs.map((c) => {
      // "this" is the conflict copy, "other" the file it is a copy of.
      const other = state.files.find((f) => f.path === c.conflict_of && !f.deleted);
      const resolve = (keep) =>
        guarded(async () => {
          await api("POST", "/folders/" + encodeURIComponent(folder) + "/resolve", { path: c.path, keep });
          soon("files", loadFiles);
        });
      const make = () =>
        el(
          "li",
          { class: "conflict", dataTestid: "conflict", dataPath: c.path, dataConflictOf: c.conflict_of },
          el("span", { class: "grow" },
            el("b", { text: c.conflict_of }),
            el("br"),
            el("small", { class: "muted" }, "this: ", link(c), side(c)),
            el("br"),
            el("small", { class: "muted" }, "other: ", other ? link(other) : base(c.conflict_of), other ? side(other) : " (missing)")
          ),
          el("button", { type: "button", dataTestid: "keep-this", title: "Keep the conflict copy's content as " + c.conflict_of, onclick: resolve("this"), text: "keep this" }),
          el("button", { type: "button", dataTestid: "keep-other", title: "Keep " + c.conflict_of + " as it is", onclick: resolve("other"), text: "keep other" })
        );
      return { key: c.path, sig: sig(folder, c, other), make };
    });
    syncList(list, rows);
  }

  async function upload(files) {
    const folder = state.folder;
    const dir = state.dir;
    if (!folder || !files || !files.length) return;
    const status = $("upload-status");
    const input = $("upload-input");
    input.disabled = true;
    let done = 0;
    try {
      for (const file of files) {
        const path = dir + file.name;
        status.dataset.state = "uploading";
        status.textContent = "uploading " + path + "…";
        await putFile("/folders/" + encodeURIComponent(folder) + "/files/" + enc(path), file, (p) => {
          status.textContent = "uploading " + path + "… " + Math.floor(p * 100) + "%";
        });
        done++;
      }
      status.dataset.state = "done";
      status.textContent = "uploaded " + (done === 1 ? dir + files[0].name : done + " files");
    } catch (e) {
      status.dataset.state = "failed";
      status.textContent = "upload failed: " + e.message;
      throw e;
    } finally {
      input.disabled = false;
      input.value = "";
      soon("files", loadFiles);
    }
  }

  // ---- history -----------------------------------------------------------

  async function loadHistory() {
    const folder = state.folder;
    const path = state.history;
    if (!folder || !path) return;
    $("history").hidden = false;
    $("history-title").textContent = "History of " + path;
    const vs = await api("GET", "/folders/" + encodeURIComponent(folder) + "/history?path=" + encodeURIComponent(path));
    if (folder !== state.folder || path !== state.history) return;
    state.versions = vs || [];
    renderHistory();
  }

  // renderHistory draws the history of state.history: the current version
  // (from the file list) and the kept ones.
  function renderHistory() {
    const folder = state.folder;
    const path = state.history;
    const vs = state.versions;
    if (!folder || !path) return;
    const list = $("version-list");
    const rows = [];
    const cur = state.files.find((f) => f.path === path);
    if (cur) {
      rows.push({ key: "current", sig: sig(folder, cur), make: () =>
        el("li", { class: "version current", dataTestid: "current-version", dataSize: cur.size, dataDeleted: cur.deleted ? "true" : "false" },
          el("span", { class: "grow" }, el("b", { text: cur.deleted ? "deleted" : "current" }), el("br"),
            el("small", { class: "muted", text: (cur.by ? "by " + cur.by + " · " : "") + when(cur.mtime) + " · " + size(cur.size) }))) });
    }
    if (vs !== null && !vs.length) {
      rows.push({ key: "none", sig: "", make: () => el("li", { class: "muted", dataTestid: "no-versions", text: "No kept versions." }) });
    }
    for (const v of vs || []) {
      rows.push({ key: "v" + v.n, sig: sig(folder, path, v), make: () =>
        el(
          "li",
          { class: "version", dataTestid: "version", dataN: v.n, dataSize: v.size },
          el("span", { class: "grow" },
            el("b", { text: "version " + v.n }),
            el("br"),
            el("small", { class: "muted", text: (v.by ? "by " + v.by + " · " : "") + "modified " + when(v.mtime) + " · kept " + when(v.kept) + " · " + size(v.size) })
          ),
          el("button", {
            type: "button",
            dataTestid: "restore",
            onclick: guarded(async () => {
              const st = $("history-status");
              st.dataset.state = "restoring";
              st.textContent = "restoring version " + v.n + "…";
              try {
                await api("POST", "/folders/" + encodeURIComponent(folder) + "/restore", { path, version: v.n });
              } catch (e) {
                st.dataset.state = "failed";
                st.textContent = "restore failed: " + e.message;
                throw e;
              }
              st.dataset.state = "done";
              st.dataset.version = v.n;
              st.textContent = "restored version " + v.n + " of " + path;
              soon("files", loadFiles);
              soon("history", loadHistory);
            }),
            text: "restore",
          })
        ) });
    }
    syncList(list, rows);
  }

  // ---- news ---------------------------------------------------------------

  async function loadNews() {
    state.news = (await api("GET", "/news")) || [];
    renderNews();
  }

  function renderNews() {
    if (state.news.length > 200) state.news = state.news.slice(-200);
    const list = $("news-list");
    const rows = state.news.slice().reverse().map((n) => ({ key: "n" + n.id, sig: sig(n), make: () =>
      el("li", { class: "news " + (n.kind || ""), dataTestid: "news", dataId: n.id, dataKind: n.kind },
        el("span", { class: "grow", text: n.text }),
        since("small", { class: "muted" }, "", n.time)) }));
    if (!rows.length) rows.push({ key: "none", sig: "", make: () => el("li", { class: "muted", text: "Nothing yet." }) });
    syncList(list, rows);
  }

  // ---- invite ----------------------------------------------------------------

  async function invite() {
    const btn = $("invite-btn");
    btn.disabled = true;
    try {
      const r = await api("POST", "/invite", { role: $("invite-role").value, ttl: $("invite-ttl").value });
      $("invite-code").textContent = r.code;
      $("invite-copy").textContent = "Copy";
      const qr = $("invite-qr");
      if (r.qr_png && /^data:image\/png;base64,/.test(r.qr_png)) {
        qr.src = r.qr_png;
        qr.hidden = false;
      } else {
        qr.removeAttribute("src");
        qr.hidden = true;
      }
      $("invite-expires").textContent = when(r.expires);
      $("invite-result").hidden = false;
    } finally {
      btn.disabled = false;
    }
  }

  // ---- services ----------------------------------------------------------------

  async function loadServices() {
    const svcs = (await api("GET", "/services")) || [];
    const list = $("service-list");
    const rows = svcs.map((s) => ({ key: "s" + s.name, sig: sig(s), make: () =>
        el("li", { class: "service", dataTestid: "service", dataName: s.name },
          el("span", { class: "grow" },
            el("b", { text: s.name }), " → ", el("code", { text: s.target || s.addr || "" }),
            el("br"),
            el("small", { class: "muted", dataTestid: "service-allow", text: allowed(s.allow) })),
          el("button", {
            type: "button",
            class: "ghost",
            dataTestid: "unexpose",
            onclick: guarded(async () => {
              await api("DELETE", "/services/" + encodeURIComponent(s.name));
              await loadServices();
            }),
            text: "unexpose",
          })) }));
    if (!rows.length) rows.push({ key: "none", sig: "", make: () => el("li", { class: "muted", text: "This device exposes no services." }) });
    syncList(list, rows);
  }

  // allowed words a service's allow list (device IDs; empty: everyone).
  function allowed(ids) {
    if (!ids || !ids.length) return "every member may connect";
    const names = ids.map((id) => {
      const d = state.devices.find((x) => x.id === id);
      return d ? d.name : id.slice(0, 12) + "…";
    });
    return "only " + names.join(", ");
  }

  async function expose() {
    await api("POST", "/services", { name: $("expose-name").value.trim(), target: $("expose-target").value.trim() });
    $("expose-name").value = "";
    $("expose-target").value = "";
    await loadServices();
  }

  // ---- wiring ------------------------------------------------------------------

  function wire() {
    // The forms are sent by script: prevent the browser's own submission
    // at once, not in the promise that runs the action.
    const onSubmit = (id, fn) =>
      $(id).addEventListener("submit", (ev) => {
        ev.preventDefault();
        guarded(fn)(ev);
      });
    onSubmit("login-form", login);
    onSubmit("invite-form", invite);
    onSubmit("expose-form", expose);
    $("invite-copy").addEventListener("click", guarded(async () => {
      await navigator.clipboard.writeText($("invite-code").textContent);
      $("invite-copy").textContent = "Copied";
    }));
    onSubmit("logout-form", async () => {
      closeEvents();
      await fetch("/logout", { method: "POST", credentials: "same-origin" });
      showLogin();
    });
    $("error").addEventListener("click", () => ($("error").hidden = true));
    $("upload-input").addEventListener("change", (ev) => guarded(upload)([...ev.target.files]));
    $("show-deleted").addEventListener("change", renderFiles);
    $("browser-close").addEventListener("click", () => setHash(null));
    $("history-close").addEventListener("click", () => setHash(state.folder, state.dir, null));
    const drop = $("drop");
    drop.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (ev) => {
      ev.preventDefault();
      drop.classList.remove("over");
      guarded(upload)([...ev.dataTransfer.files]);
    });
    window.addEventListener("hashchange", onHash);
    window.addEventListener("popstate", onHash);
    // Relative times ("2 min ago") age on the page itself; this redraws
    // from what the page holds and asks the daemon for nothing.
    setInterval(ageAll, 30000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire();
    guarded(boot)();
  });
})();
