#!/usr/bin/python3
"""The browser half of tests/browser/test-cockpit.sh: Debian's headless Chromium, driven
with Selenium, against rma-broker's Cockpit page as a real cockpit-ws serves it. Prints
TAP lines ("ok - ..." / "not ok - ..."), which the shell renumbers. The broker, its bus
and the two cockpit-ws are the shell's; this script stops and starts the broker once
(its new pid goes to $TEST_DIR/broker.pid)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TEST_DIR = os.environ["TEST_DIR"]
TEST_CLIENT = os.environ["TEST_CLIENT"]
POLICY = os.environ["POLICY"]
SHOTS = os.environ["SHOTS"]
ROOT_URL = f"http://127.0.0.1:{os.environ['ROOT_PORT']}"
NOBODY_URL = f"http://127.0.0.1:{os.environ['NOBODY_PORT']}"
PAGE = "/cockpit/@localhost/rma-broker/index.html"
BUS = ["busctl", "--system"]
DEST = ["org.rmabroker.Broker1", "/org/rmabroker/Broker1", "org.rmabroker.Broker1"]
failed = 0


def tap(ok, what, detail=None):
    global failed
    print(("ok" if ok else "not ok") + " - " + what, flush=True)
    if not ok:
        failed += 1
        if detail:
            for line in str(detail).splitlines():
                print("# " + line, flush=True)


def prop(name):
    out = subprocess.run(BUS + ["get-property"] + DEST + [name], capture_output=True, text=True, check=True)
    return out.stdout.split(" ", 1)[1].strip()


def bus_call(*args):
    return subprocess.run(BUS + ["call"] + DEST + list(args), capture_output=True, text=True)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1280,1900",
                 f"--user-data-dir={TEST_DIR}/chromium-{time.monotonic_ns()}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_for(driver, what, seconds=10):
    """what(driver) once it is true, or None. The page re-renders its tables on every change
    of the broker: an element found a moment ago may be gone, so that try counts as false."""
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.05,
                             ignored_exceptions=[StaleElementReferenceException]).until(lambda d: what(d))
    except TimeoutException:
        return None


def click(driver, css):
    """Click the element css names, finding it again if a re-render replaced it."""
    def attempt(d):
        found = d.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        found[0].click()
        return True
    return wait_for(driver, attempt, seconds=5) is not None


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def shown(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def console_errors(driver):
    """The page's console errors since the last call (reading the log empties it)."""
    return [e["message"][:300] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def counts_on_page(driver):
    return {s: text(driver, f"rma-count-{s}") for s in ("free", "reserved", "leased", "scrubbing", "held-elsewhere")}


def counts_on_bus():
    return {"free": prop("FreeRmas"), "reserved": prop("ReservedRmas"), "leased": prop("LeasedRmas"),
            "scrubbing": prop("ScrubbingRmas"), "held-elsewhere": prop("HeldElsewhereRmas")}


def uuid(n):
    return f"00000000-0000-4000-8000-{n:012d}"


def main():
    admin = browser()
    claimant = None
    try:
        # The page, as root (Cockpit's administrative access).
        admin.get(ROOT_URL + PAGE)
        tap(wait_for(admin, lambda d: shown(d, "rma-content") and text(d, "rma-total") == "4") is not None,
            "the page loads and shows the pool of 4")
        errors = console_errors(admin)   # reading the log empties it
        tap(errors == [], "... with no console errors", errors)
        tap(counts_on_page(admin) == counts_on_bus(), "its counts equal busctl get-property",
            f"page {counts_on_page(admin)} bus {counts_on_bus()}")
        tap(text(admin, "rma-backend") == "memfd" and text(admin, "rma-size") == "4 MiB",
            "backend and region size are the broker's", f"{text(admin, 'rma-backend')} {text(admin, 'rma-size')}")
        tap("no pseries guest can use an RMA of this size" in text(admin, "rma-size-warning") and
            "Size= to 256M" in text(admin, "rma-size-warning"),
            "... and a size no pseries guest can use is said to be one, with what to set",
            text(admin, "rma-size-warning"))

        # A Reserve and a Claim, made here, appear within 2 s.
        t0 = time.monotonic()
        bus_call("Reserve", "sss", uuid(1), "web-1", "")
        claimant = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                                     TEST_CLIENT, "claim", uuid(1)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, env=dict(os.environ, RMA_BROKER_SOCKET=f"{TEST_DIR}/run/broker.sock"))
        claimant.stdout.readline()   # "held SIZE": the lease is there
        row = wait_for(admin, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-uuid="{uuid(1)}"][data-state="leased"]'),
                       seconds=2)
        took = time.monotonic() - t0
        tap(row is not None, f"a Reserve and a Claim show in the table within 2 s (took {took:.2f} s)")
        tap(wait_for(admin, lambda d: text(d, "rma-count-leased") == "1", seconds=2) is not None and
            admin.find_elements(By.CSS_SELECTOR, "#rma-bar span[data-state=leased]") != [],
            "... and in the bar and its counts")
        cells = wait_for(admin, lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, f'tr[data-uuid="{uuid(1)}"] td')])
        cells = cells or []
        tap(len(cells) > 5 and cells[1:5] == ["web-1", "open", str(claimant.pid), "leased"] and "ago" in cells[5],
            "the row gives domain, tenant, pid, state and since when", cells)

        # A tenant at its cap.
        bus_call("Reserve", "sss", uuid(2), "cap-a", "")
        capped = wait_for(admin, lambda d: d.find_elements(By.CSS_SELECTOR, 'tr.rma-at-cap[data-tenant="capped"]'),
                          seconds=5)
        tap(capped is not None, "a tenant at its cap is highlighted")
        tap(capped is not None and "at its cap" in capped[0].text, "... and says so")

        # Screenshots, light and dark (Cockpit's style, as the shell keeps it).
        admin.save_screenshot(f"{SHOTS}/cockpit-light.png")
        admin.execute_script("localStorage.setItem('shell:style', 'dark');")
        admin.refresh()
        dark = wait_for(admin, lambda d: shown(d, "rma-content") and
                        d.execute_script("return document.documentElement.classList.contains('pf-theme-dark')"))
        tap(dark is not None, "Cockpit's dark style applies to the page")
        tap(wait_for(admin, lambda d: text(d, "rma-count-leased") == "1") is not None, "... the data is back at once")
        admin.save_screenshot(f"{SHOTS}/cockpit-dark.png")
        admin.execute_script("localStorage.setItem('shell:style', 'light');")
        admin.refresh()
        wait_for(admin, lambda d: shown(d, "rma-content"))

        # An admin reload with a broken policy file shows the broker's message.
        with open(f"{POLICY}/20-broken.conf", "w") as f:
            f.write("[Tenant broken]\nMaxRmas=lots\n")
        click(admin, "#rma-check")
        checked = wait_for(admin, lambda d: d.find_elements(By.ID, "rma-result-text"))
        want = f"{POLICY}/20-broken.conf:2: [Tenant broken] MaxRmas=lots is invalid"
        tap(checked is not None and want in checked[0].text, "Check the policy shows the broker's file:line message",
            checked[0].text if checked else "no result")
        click(admin, "#rma-reload")
        reloaded = wait_for(admin, lambda d: d.find_elements(By.ID, "rma-result-text") and
                            "not applied" in d.find_element(By.ID, "rma-result").text)
        tap(reloaded is not None and want in admin.find_element(By.ID, "rma-result-text").text,
            "Reload with the broken file shows the broker's message, verbatim", admin.find_element(By.ID, "rma-result").text)
        os.unlink(f"{POLICY}/20-broken.conf")

        # Drain and undrain from the page: the state shows, and the broker has it.
        admin.find_element(By.ID, "rma-drain-reason").send_keys("firmware update")
        click(admin, "#rma-drain")
        drained = wait_for(admin, lambda d: shown(d, "rma-draining") and shown(d, "rma-undrain"), seconds=5)
        tap(drained is not None and prop("Draining") == "true" and prop("DrainReason") == '"firmware update"',
            "Drain this host drains it, with the reason", f"Draining={prop('Draining')} {prop('DrainReason')}")
        tap(drained is not None and "firmware update" in text(admin, "rma-draining-text"),
            "... and the page says the host is draining, and why")
        refused = bus_call("Reserve", "sss", uuid(3), "web-3", "")
        tap("this host is draining (firmware update)" in refused.stderr, "... a new Reserve is refused meanwhile",
            refused.stderr)
        click(admin, "#rma-undrain")
        tap(wait_for(admin, lambda d: not shown(d, "rma-draining") and shown(d, "rma-drain"), seconds=5) is not None
            and prop("Draining") == "false", "End the drain ends it")

        # Release a reservation from the page.
        button = f'tr[data-uuid="{uuid(2)}"] button.rma-release'
        tap(admin.find_elements(By.CSS_SELECTOR, button) != [], "an admin gets a Release button on a reservation")
        if click(admin, button):
            tap(wait_for(admin, lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-uuid="{uuid(2)}"]'), 5)
                is not None and prop("ReservedRmas") == "0", "... which releases it")

        # The broker stops: the empty state, with the command that starts it.
        broker = int(os.environ["BROKER_PID"])
        os.kill(broker, signal.SIGTERM)
        empty = wait_for(admin, lambda d: shown(d, "rma-empty"), seconds=10)
        tap(empty is not None and "systemctl start rma-brokerd" in text(admin, "rma-empty"),
            "a stopped broker shows the empty state, with the command that starts it")
        # ... and comes back: followed without a reload.
        out = subprocess.run([f"{TEST_DIR}/start-broker.sh"], capture_output=True, text=True, check=True)
        with open(f"{TEST_DIR}/broker.pid", "w") as f:
            f.write(out.stdout.strip())
        back = wait_for(admin, lambda d: shown(d, "rma-content") and text(d, "rma-count-leased") == "1", seconds=15)
        tap(back is not None, "a restarted broker is followed without a page reload (its lease re-adopted)")
        errors = console_errors(admin)
        tap(errors == [], "no console errors through all of it", errors)

        # The menu of the shell lists the page.
        admin.get(ROOT_URL + "/")
        listed = wait_for(admin, lambda d: d.find_elements(By.XPATH, "//a[contains(., 'RMA pool')]"), seconds=20)
        tap(listed is not None, "Cockpit's menu lists the page as 'RMA pool'")
    finally:
        admin.quit()

    # nobody: a read-only page, with the reason.
    reader = browser()
    try:
        reader.get(NOBODY_URL + PAGE)
        tap(wait_for(reader, lambda d: shown(d, "rma-content") and shown(d, "rma-readonly")) is not None,
            "nobody gets the page, read-only")
        buttons = [b for b in reader.find_elements(By.TAG_NAME, "button") if b.is_displayed()]
        tap(buttons == [], "... with no action buttons", [b.text for b in buttons])
        tap("Read-only:" in text(reader, "rma-readonly") and "root" in text(reader, "rma-readonly"),
            "... and says why", text(reader, "rma-readonly"))
        errors = console_errors(reader)
        tap(errors == [], "... with no console errors", errors)
    finally:
        reader.quit()
        if claimant:
            claimant.stdin.close()
            claimant.wait()
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as e:   # a crash is a failure of its own, with its cause
        tap(False, "the browser check crashed", repr(e))
        sys.exit(1)
    sys.exit(0)
