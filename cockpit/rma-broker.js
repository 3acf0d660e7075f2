/* rma-broker's Cockpit page: the RMA pool, live from org.rmabroker.Broker1 on the system
 * bus. Everything it shows comes from the broker's properties and methods; it refreshes
 * on the broker's PropertiesChanged and follows the broker's name on the bus (stopped,
 * started, restarted), so nothing is polled. The chart of leased and free is the page's
 * own memory of those signals while it is open: the broker keeps no history for it.
 *
 * Admin actions are shown to those the broker says may use them (CanAdminister: root,
 * which Cockpit's administrative access gives, or AdminGroup=); everyone else gets a
 * read-only page that says why. The broker checks every call itself anyway. */
"use strict";

const BUS_NAME = "org.rmabroker.Broker1";
const OBJECT_PATH = "/org/rmabroker/Broker1";
const IFACE = "org.rmabroker.Broker1";
const STATES = ["free", "reserved", "leased", "scrubbing", "held-elsewhere"];
const COUNT_PROPERTY = {
    free: "FreeRmas",
    reserved: "ReservedRmas",
    leased: "LeasedRmas",
    scrubbing: "ScrubbingRmas",
    "held-elsewhere": "HeldElsewhereRmas",
};
const UNLIMITED = 4294967295;   /* MaxRmas of a tenant without a cap */
const HISTORY_MAX = 600;        /* points kept for the chart */
const REFRESH_DELAY_MS = 50;    /* a burst of signals gives one refresh */

/* ---- Cockpit's light or dark style, as the shell sets it ---- */

function applyStyle(style) {
    const dark = style === "dark" ||
        ((!style || style === "auto") && window.matchMedia("(prefers-color-scheme: dark)").matches);
    document.documentElement.classList.toggle("pf-theme-dark", dark);
}

function followStyle() {
    const stored = () => window.localStorage.getItem("shell:style") || "auto";
    applyStyle(stored());
    window.addEventListener("storage", event => {
        if (event.key === "shell:style")
            applyStyle(stored());
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => applyStyle(stored()));
}

/* ---- Small helpers ---- */

function $(id) {
    return document.getElementById(id);
}

function element(tag, attributes, ...children) {
    const e = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
        if (name === "class")
            e.className = value;
        else if (name === "width")
            e.style.width = value;   /* through the CSSOM: Cockpit's CSP forbids style="" */
        else
            e.setAttribute(name, value);
    }
    for (const child of children)
        e.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return e;
}

function formatBytes(bytes) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let value = Number(bytes);
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1 && value % 1024 === 0) {
        value /= 1024;
        unit++;
    }
    return `${value} ${units[unit]}`;
}

/* A CLOCK_REALTIME µs time as "12:34:56 (5 min ago)". */
function formatSince(usec) {
    if (!usec)
        return "-";
    const when = new Date(Number(usec) / 1000);
    const seconds = Math.max(0, Math.round((Date.now() - when.getTime()) / 1000));
    let ago;
    if (seconds < 60)
        ago = `${seconds} s ago`;
    else if (seconds < 3600)
        ago = `${Math.floor(seconds / 60)} min ago`;
    else
        ago = `${Math.floor(seconds / 3600)} h ago`;
    return `${when.toLocaleString()} (${ago})`;
}

/* ---- The broker on the bus ---- */

const state = {
    client: null,
    bus: null,          /* org.freedesktop.DBus itself: who owns the broker's name */
    epoch: 0,           /* counts the broker's comings and goings: stale answers are dropped */
    properties: {},
    history: [],
    machines: false,    /* cockpit-machines is installed: domains link to their page */
    admin: null,        /* null: not asked yet; else { allowed, why } */
    refreshTimer: null,
    refreshing: false,
    again: false,
};

function call(method, args) {
    return state.client.call(OBJECT_PATH, IFACE, method, args || []);
}

function showRunning(running, detail) {
    $("rma-empty").hidden = running;
    $("rma-content").hidden = !running;
    $("rma-empty-detail").textContent = running ? "" : (detail || "");
}

function scheduleRefresh() {
    if (state.refreshTimer)
        return;
    state.refreshTimer = window.setTimeout(() => {
        state.refreshTimer = null;
        refresh();
    }, REFRESH_DELAY_MS);
}

async function refresh() {
    /* One refresh at a time; a signal meanwhile asks for one more after it. */
    if (state.refreshing) {
        state.again = true;
        return;
    }
    state.refreshing = true;
    const epoch = state.epoch;
    try {
        /* Ask the bus first: a call to the broker's name would start a broker that the
         * admin stopped (D-Bus activation), and a page that looks must not. */
        await state.bus.call("/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner", [BUS_NAME]);
        const [props] = await state.client.call(OBJECT_PATH, "org.freedesktop.DBus.Properties", "GetAll", [IFACE]);
        const [slots] = await call("ListSlots");
        const [tenants] = await call("ListTenants");
        const [held] = await call("ListHeldElsewhere");
        if (state.admin === null) {
            const [allowed, why] = await call("CanAdminister");
            if (epoch === state.epoch)   /* else a new broker came meanwhile: ask it */
                state.admin = { allowed, why };
        }
        state.properties = {};
        for (const [name, variant] of Object.entries(props))
            state.properties[name] = variant.v;
        record();
        showRunning(true);
        renderPool();
        renderChart();
        renderTenants(tenants);
        renderSlots(slots, new Map(held.map(([slot, why]) => [slot, why])));
        renderAdmin();
    } catch (error) {
        if (error.name === "org.freedesktop.DBus.Error.ServiceUnknown" ||
            error.name === "org.freedesktop.DBus.Error.NameHasNoOwner" ||
            error.problem === "not-found")
            showRunning(false, "");
        else
            showRunning(false, `The broker did not answer: ${error.message || error.problem || error}`);
        state.admin = null;   /* ask again when a broker comes back: it may be another config */
    } finally {
        state.refreshing = false;
        if (state.again) {
            state.again = false;
            scheduleRefresh();
        }
    }
}

/* A point of the chart per change the broker announced. */
function record() {
    const p = state.properties;
    const last = state.history[state.history.length - 1];
    const point = { t: Date.now(), leased: p.LeasedRmas, free: p.FreeRmas, total: p.TotalRmas };
    if (last && last.leased === point.leased && last.free === point.free && last.total === point.total)
        return;
    state.history.push(point);
    if (state.history.length > HISTORY_MAX)
        state.history.shift();
}

/* ---- Rendering ---- */

// QEMU and libvirt size pseries boot memory in steps of 256 MiB, and the RMA is a guest's
// boot memory (rma_size_unusable_why in common/rma-util.c says the same).
function sizeWarning(size, backend) {
    const step = 256 * 1024 * 1024;
    if (!size || size % step === 0)
        return "";
    return "no pseries guest can use an RMA of this size: QEMU and libvirt size pseries boot memory in steps " +
        "of 256 MiB (and SLOF needs 128 MiB); " + (backend === "kvm"
        ? "boot the host with kvm_rma_size=256M (or 1G, 16G)"
        : "set Size= to 256M, 512M, 1G or a bigger power of two");
}

function renderPool() {
    const p = state.properties;
    const total = p.TotalRmas || 0;
    let backend = p.Backend;
    if (backend === "kvm")
        backend += ` (the kernel's RMA pool, KVM_CAP_PPC_RMA=${p.KernelCapability})`;
    $("rma-backend").textContent = backend;
    $("rma-size").textContent = formatBytes(p.RmaSize);
    const warning = sizeWarning(p.RmaSize, p.Backend);
    $("rma-size-warning").textContent = warning;
    $("rma-size-warning-group").hidden = warning === "";
    $("rma-total").textContent = String(total);

    const bar = $("rma-bar");
    const legend = $("rma-legend");
    bar.replaceChildren();
    legend.replaceChildren();
    const spoken = [];
    for (const s of STATES) {
        const count = p[COUNT_PROPERTY[s]] || 0;
        spoken.push(`${count} ${s}`);
        if (count > 0 && total > 0)
            bar.append(element("span", {
                class: `rma-state-${s}`,
                width: `${(100 * count) / total}%`,
                title: `${count} ${s}`,
                "data-state": s,
            }));
        legend.append(element("li", {},
                              element("span", { class: `rma-swatch rma-state-${s}`, "aria-hidden": "true" }),
                              `${s} `,
                              element("span", { class: "rma-count", id: `rma-count-${s}`, "data-count": count },
                                      count)));
    }
    bar.setAttribute("aria-label", `RMAs by state: ${spoken.join(", ")}, of ${total}`);

    const draining = Boolean(p.Draining);
    $("rma-draining").hidden = !draining;
    $("rma-draining-text").textContent = draining
        ? `${p.DrainReason ? `Reason: ${p.DrainReason}. ` : ""}Running domains keep their RMAs; ` +
          "a new virsh start of an opted-in domain is refused until the drain ends (rmactl undrain)."
        : "";

    const pending = p.PendingPoolChange || "";
    $("rma-pending").hidden = pending === "";
    $("rma-pending-text").textContent = pending;
}

function renderChart() {
    const svg = $("rma-chart");
    const ns = "http://www.w3.org/2000/svg";
    const width = 600;
    const height = 160;
    const pad = 18;
    const points = state.history;
    const top = Math.max(1, ...points.map(point => point.total || 0));
    svg.replaceChildren();

    const line = (cls, x1, y1, x2, y2) => {
        const l = document.createElementNS(ns, "line");
        for (const [k, v] of Object.entries({ class: cls, x1, y1, x2, y2 }))
            l.setAttribute(k, v);
        svg.append(l);
    };
    /* Text goes outside the SVG, which stretches to the card's width. */
    line("rma-grid", 0, pad, width, pad);
    line("rma-grid", 0, height - pad, width, height - pad);
    $("rma-chart-scale").textContent = `0 to ${top} RMAs`;
    if (points.length === 0)
        return;

    const t0 = points[0].t;
    const span = Math.max(1, Date.now() - t0);   /* from the page's opening to now */
    const x = t => (width * (t - t0)) / span;
    const y = v => height - pad - ((height - 2 * pad) * v) / top;
    for (const key of ["free", "leased"]) {
        /* Steps: a count holds until the next change. */
        let d = "";
        points.forEach((point, i) => {
            d += i === 0 ? `M ${x(point.t)} ${y(point[key])}` : ` H ${x(point.t)} V ${y(point[key])}`;
        });
        d += ` H ${x(Date.now())}`;
        const path = document.createElementNS(ns, "path");
        path.setAttribute("class", `rma-${key}`);
        path.setAttribute("d", d);
        svg.append(path);
    }
    $("rma-chart-from").textContent = new Date(t0).toLocaleTimeString();
    const last = points[points.length - 1];
    svg.setAttribute("aria-label",
                     `Leased and free RMAs since ${new Date(t0).toLocaleTimeString()}: now ${last.leased} leased, ` +
                     `${last.free} free`);
}

function renderTenants(tenants) {
    const body = $("rma-tenants");
    const total = state.properties.TotalRmas || 0;
    body.replaceChildren();
    for (const [name, max, guaranteed, leased, reserved] of tenants) {
        const cap = max === UNLIMITED ? total : max;
        const held = leased + reserved;
        const atCap = cap > 0 && held >= cap;
        const percent = cap > 0 ? Math.min(100, (100 * held) / cap) : 0;
        const meter = element("span", {
            class: "rma-cap",
            role: "meter",
            "aria-valuemin": 0,
            "aria-valuemax": cap,
            "aria-valuenow": held,
            "aria-label": `${name}: ${held} of ${max === UNLIMITED ? "the pool's" : "its MaxRmas of"} ${cap}` +
                          (atCap ? ", at its cap" : ""),
        }, element("span", { width: `${percent}%` }));
        const row = element("tr", { role: "row", "data-tenant": name, class: atCap ? "rma-at-cap" : "" },
                            element("td", { role: "cell", "data-label": "Tenant" }, name),
                            element("td", { role: "cell", "data-label": "MaxRmas" },
                                    max === UNLIMITED ? "(the pool)" : max),
                            element("td", { role: "cell", "data-label": "GuaranteedRmas" }, guaranteed),
                            element("td", { role: "cell", "data-label": "Leased" }, leased),
                            element("td", { role: "cell", "data-label": "Reserved" }, reserved),
                            element("td", { role: "cell", "data-label": "Against its cap" }, meter,
                                    atCap ? element("span", { class: "pf-c-label pf-m-red rma-cap-label" },
                                                    element("span", { class: "pf-c-label__content" }, "at its cap"))
                                        : ""));
        body.append(row);
    }
}

function domainCell(domain) {
    if (!domain)
        return "-";
    if (!state.machines)
        return domain;
    /* cockpit-machines' page for the VM, on the system connection. */
    const link = element("a", { href: "#", "data-domain": domain }, domain);
    link.addEventListener("click", event => {
        event.preventDefault();
        cockpit.jump(`/machines#vm?name=${encodeURIComponent(domain)}&connection=system`);
    });
    return link;
}

function renderSlots(slots, heldWhy) {
    const body = $("rma-slots");
    body.replaceChildren();
    let shown = 0;
    for (const [slot, slotState, uuid, domain, tenant, pid, since] of slots) {
        if (slotState === "free")
            continue;
        shown++;
        let stateCell = slotState;
        if (heldWhy.has(slot))
            stateCell = element("span", {}, slotState, element("span", { class: "rma-why" }, heldWhy.get(slot)));
        let action = "";
        if (slotState === "reserved" && state.admin && state.admin.allowed) {
            action = element("button", {
                class: "pf-c-button pf-m-link rma-release",
                type: "button",
                "aria-label": `Release the reservation of ${domain}`,
            }, "Release");
            action.addEventListener("click", () => release(uuid, domain));
        }
        body.append(element("tr", { role: "row", "data-slot": slot, "data-uuid": uuid, "data-state": slotState },
                            element("td", { role: "cell", "data-label": "Slot" }, slot),
                            element("td", { role: "cell", "data-label": "Domain", title: uuid }, domainCell(domain)),
                            element("td", { role: "cell", "data-label": "Tenant" }, tenant || "-"),
                            element("td", { role: "cell", "data-label": "PID" }, pid || "-"),
                            element("td", { role: "cell", "data-label": "State" }, stateCell),
                            element("td", { role: "cell", "data-label": "Since" }, formatSince(since)),
                            element("td", { role: "cell", class: "pf-c-table__action" }, action)));
    }
    $("rma-slots-none").hidden = shown > 0;
}

function renderAdmin() {
    const allowed = state.admin && state.admin.allowed;
    $("rma-actions").hidden = !allowed;
    $("rma-drain-actions").hidden = !allowed;
    const draining = Boolean(state.properties.Draining);
    $("rma-drain-form").hidden = draining;
    $("rma-undrain").hidden = !draining;
    $("rma-readonly").hidden = allowed;
    if (!allowed)
        $("rma-readonly").textContent = `Read-only: ${state.admin ? state.admin.why : ""}`;
}

/* ---- Admin actions: the broker's own words, verbatim ---- */

function showResult(kind, title, lines) {
    const result = $("rma-result");
    const alert = element("div", { class: `pf-c-alert pf-m-inline pf-m-${kind}`, role: "alert" },
                          element("p", { class: "pf-c-alert__title" }, title));
    if (lines && lines.length)
        alert.append(element("div", { class: "pf-c-alert__description" },
                             element("pre", { id: "rma-result-text" }, lines.join("\n"))));
    result.replaceChildren(alert);
}

async function reload() {
    try {
        await call("Reload");
        showResult("success", "The tenant policy was reloaded.");
    } catch (error) {
        /* The broker joins its problems with "; " after a sentence that ends in ": ". */
        const text = error.message || String(error);
        const colon = text.indexOf(": ");
        const head = colon >= 0 ? text.slice(0, colon) : text;
        const problems = colon >= 0 ? text.slice(colon + 2).split("; ") : [];
        showResult("danger", head, problems);
    }
    scheduleRefresh();
}

async function check() {
    try {
        const [problems] = await call("CheckPolicy");
        if (problems.length === 0)
            showResult("success", "The tenant policy on disk is valid.");
        else
            showResult("danger", `The tenant policy on disk has ${problems.length} problem` +
                       `${problems.length === 1 ? "" : "s"}; a reload would refuse it:`, problems);
    } catch (error) {
        showResult("danger", error.message || String(error));
    }
}

async function setDraining(on) {
    try {
        if (on)
            await call("Drain", [$("rma-drain-reason").value.trim()]);
        else
            await call("Undrain");
        showResult("success", on ? "This host is draining: it gives out no new RMAs."
            : "The drain ended: new RMAs are given out again.");
    } catch (error) {
        showResult("danger", error.message || String(error));
    }
    scheduleRefresh();
}

async function release(uuid, domain) {
    try {
        await call("Release", [uuid]);
        showResult("success", `The reservation of ${domain} was released.`);
    } catch (error) {
        showResult("danger", error.message || String(error));
    }
    scheduleRefresh();
}

/* ---- Start ---- */

function start() {
    followStyle();
    state.machines = Boolean(cockpit.manifests && cockpit.manifests.machines);
    state.client = cockpit.dbus(BUS_NAME, { bus: "system", superuser: "try" });
    state.client.subscribe({ path: OBJECT_PATH, interface: "org.freedesktop.DBus.Properties",
                             member: "PropertiesChanged" }, scheduleRefresh);
    /* The broker's name on the bus: stopped, started, restarted. */
    state.bus = cockpit.dbus("org.freedesktop.DBus", { bus: "system" });
    state.bus.subscribe({ interface: "org.freedesktop.DBus", member: "NameOwnerChanged", arg0: BUS_NAME }, () => {
        state.epoch++;
        state.admin = null;
        scheduleRefresh();
    });
    $("rma-reload").addEventListener("click", reload);
    $("rma-check").addEventListener("click", check);
    $("rma-drain").addEventListener("click", () => setDraining(true));
    $("rma-undrain").addEventListener("click", () => setDraining(false));
    /* The chart's time axis runs on to now between the broker's signals. */
    window.setInterval(() => {
        if (!$("rma-content").hidden)
            renderChart();
    }, 5000);
    cockpit.transport.wait(() => {
        state.machines = Boolean(cockpit.manifests && cockpit.manifests.machines);
        refresh();
    });
}

document.addEventListener("DOMContentLoaded", start);
