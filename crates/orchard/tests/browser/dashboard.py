"""The dashboard's scenarios in headless Chromium, run by `tests/dashboard.rs` against a live
`orchard up` (real Blender). One browser session, the scenarios in sequence; each saves a
screenshot in ORCHARD_SCREENSHOTS. Exits non-zero on the first failure, naming it.

The API calls made here directly (with a key, as any client) only set the stage: a job that
fails, a job no worker can take, a job that keeps the worker busy. Everything checked is
checked in the page.
"""

import io
import json
import os
import sys
import time
import traceback
import urllib.request
import zipfile

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["ORCHARD_URL"].rstrip("/")
ADMIN = os.environ["ORCHARD_ADMIN_KEY"]
STUDIO = os.environ["ORCHARD_STUDIO_KEY"]
RIVAL = os.environ["ORCHARD_RIVAL_KEY"]
SCENE = os.path.realpath(os.environ["ORCHARD_SCENE"])
SHOTS = os.environ["ORCHARD_SCREENSHOTS"]
API = URL + "/api/external/v1"

# Deadlines, not timing assertions: long enough for a slow shared machine.
RENDER_DEADLINE = 300
PAGE_DEADLINE = 30


def call(method, path, key, body=None):
    """One API call with a key, as a client makes it."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


def submit(key, config):
    """Upload, create, validate and render the example scene; the job's id."""
    upload = call("POST", "/uploads", key, {"fileName": "cube.blend", "fileType": "blend"})
    with open(SCENE, "rb") as scene:
        put = urllib.request.Request(upload["uploadUrl"], data=scene.read(), method="PUT")
        urllib.request.urlopen(put).read()
    job = call("POST", "/jobs", key, {"slug": upload["slug"]})
    call("POST", f"/jobs/{job['id']}/validate", key)
    call("POST", f"/jobs/{job['id']}/render", key, {"requestedRenderConfig": config})
    return job["id"]


def small(frames, **extra):
    config = {"colorManagementPreset": "default", "frameRanges": [frames], "resolution": [64, 48],
              "resolutionPercentage": 100, "sampleCount": 2, "denoisingEnabled": False}
    config.update(extra)
    return config


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("ORCHARD_CHROMIUM", "/usr/bin/chromium")
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--no-first-run", "--disable-extensions"]:
        options.add_argument(argument)
    service = Service(executable_path=os.environ.get("ORCHARD_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


driver = browser()


def wait(condition, what, deadline=PAGE_DEADLINE):
    try:
        return WebDriverWait(driver, deadline, poll_frequency=0.2).until(lambda _: condition())
    except TimeoutException:
        raise AssertionError(f"gave up waiting for {what} (on {driver.current_url})") from None


def find(selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def finds(selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def text(selector):
    """The text of the first match, read in one step (the page redraws as events arrive)."""
    return driver.execute_script("return document.querySelector(arguments[0])?.innerText ?? ''", selector)


def click(selector):
    """Clicks the first match, found and clicked in one step (the page redraws as events arrive)."""
    wait(lambda: finds(selector), selector)
    driver.execute_script("document.querySelector(arguments[0]).click()", selector)


def shot(name):
    path = os.path.join(SHOTS, name + ".png")
    driver.save_screenshot(path)
    print(f"  screenshot {path}", flush=True)


def assert_labelled():
    """Every control of the page has a name a screen reader can say (a label, an aria-label or
    its text), so that it can be found and used from the keyboard."""
    unnamed = driver.execute_script("""
        return [...document.querySelectorAll('input, select, textarea, button, a[href]')]
            .filter((it) => it.type !== 'hidden')
            .filter((it) => !(it.labels?.length || it.getAttribute('aria-label') || it.textContent.trim()))
            .map((it) => it.outerHTML.slice(0, 120));
    """)
    assert not unnamed, f"controls without a name on {driver.current_url}: {unnamed}"


def log_in(key):
    driver.get(URL + "/login")
    field = find("#key")
    field.clear()
    field.send_keys(key)
    click("form[action='/login'] button[type=submit]")


def log_out():
    click("form.logout button")
    wait(lambda: driver.current_url.endswith("/login"), "the login page after logging out")


def page_fetch(method, path, csrf):
    """A request made by the page's own JavaScript, with its session cookie."""
    script = """
        const [method, path, csrf, done] = arguments;
        const headers = {"Content-Type": "application/json"};
        if (csrf) headers["X-Orchard-CSRF"] = document.querySelector('meta[name="csrf-token"]').content;
        const body = method === "GET" ? undefined : JSON.stringify({fileName: "x.blend", fileType: "blend"});
        fetch(path, {method, headers, body}).then(r => done(r.status), e => done(String(e)));
    """
    return driver.execute_async_script(script, method, path, csrf)


def job_status():
    return driver.execute_script("return document.querySelector('#job-status')?.dataset.status ?? ''")


# ---------------------------------------------------------------------------------------------

def login_refuses_a_wrong_key():
    log_in("RJ-000000000000000000000000000000000000000000000000")
    wait(lambda: "unknown or revoked" in text("#login-problem"), "the login refusal")
    assert not driver.get_cookie("orchard_session"), "no session for a wrong key"
    shot("01-login-refused")
    log_in(STUDIO)
    wait(lambda: finds("table#jobs"), "the jobs page after logging in")
    cookie = driver.get_cookie("orchard_session")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
    assert_labelled()
    shot("02-jobs-after-login")


state = {}


def submit_renders_three_frames_live():
    driver.get(URL + "/submit")
    find("#scene-file").send_keys(SCENE)
    wait(lambda: finds("#render-form"), "the analysis and the render form")
    assert "ms" in text("#analysis-ms"), text("#analysis-ms")
    assert "Scene" in text("#scenes"), text("#scenes")
    assert "CYCLES" in text("#scenes"), text("#scenes")
    assert finds("#config-compare"), "the detected configuration"
    assert_labelled()
    shot("03-submit-analysis")
    for selector, value in [("#frames", "1-3"), ("#samples", "16"), ("#width", "320"), ("#height", "240")]:
        field = find(selector)
        field.clear()
        field.send_keys(value)
    if find("#denoising").is_selected():
        click("#denoising")
    click("#video")
    click("#render-button")
    wait(lambda: "/jobs/" in driver.current_url and finds("#frame-grid, #frames-panel"), "the job page")
    state["job"] = driver.current_url.rsplit("/", 1)[1]
    # Nothing below reloads the page: this mark would be gone.
    driver.execute_script("window.__stayed = true;")
    wait(lambda: text("#percent") == "100 %", "the progress bar to reach 100 %", RENDER_DEADLINE)
    wait(lambda: len(finds("#frame-grid .frame.done")) == 3, "three done frames in the grid", RENDER_DEADLINE)
    wait(lambda: job_status() == "completed", "the job to complete", RENDER_DEADLINE)
    wait(lambda: finds("#download-zip") and finds("#download-video"), "the zip and video links")
    assert driver.execute_script("return window.__stayed === true"), "the page reloaded"
    assert find(".bar.big").get_attribute("aria-valuenow") == "100"
    wait(lambda: finds("#preview-image"), "the preview")
    wait(lambda: finds("#analysis-view #config-compare"), "the analysis")
    shot("04-job-completed")
    assert_labelled()
    driver.set_window_size(1280, 1500)
    shot("job-page")
    driver.set_window_size(390, 844)
    shot("04-job-phone")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    driver.set_window_size(1280, 1000)
    shot("04-job-dark")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    click("#frame-grid .frame[data-frame='2']")
    wait(lambda: driver.execute_script(
        "const img = document.getElementById('frame-full'); return img && img.complete && img.naturalWidth > 0"),
        "the full frame to open")
    assert driver.execute_script("return document.getElementById('frame-full').naturalWidth") == 320
    shot("05-frame-open")
    click("#close-frame")

    href = find("#download-zip").get_attribute("href")
    with urllib.request.urlopen(href) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    names = sorted(archive.namelist())
    assert names == ["frame_0001.png", "frame_0002.png", "frame_0003.png"], names
    with urllib.request.urlopen(find("#download-video").get_attribute("href")) as response:
        assert response.read(12)[4:8] == b"ftyp", "the video is an MP4"


def suspend_and_resume_from_the_page():
    # Needs more memory than any worker has: it stays booting, with its waiting reason.
    job = submit(STUDIO, small("1", minimumRam=4096))
    deadline = time.time() + PAGE_DEADLINE
    while not call("GET", f"/jobs/{job}", STUDIO)["data"].get("waitingReason"):
        assert time.time() < deadline, "the job never said why it waits"
        time.sleep(0.2)
    driver.get(f"{URL}/jobs/{job}")
    wait(lambda: job_status() == "booting", "a booting job")
    wait(lambda: finds("#waiting-reason"), "the waiting reason")
    click("button[data-action='suspend']")
    wait(lambda: job_status() == "suspended", "the job to be suspended")
    shot("06-suspended")
    click("button[data-action='resume']")
    wait(lambda: job_status() == "booting", "the job to resume")
    shot("07-resumed")
    call("POST", f"/jobs/{job}/cancel", STUDIO)


def a_failed_job_shows_its_reason_and_log():
    job = state["failed"]
    deadline = time.time() + RENDER_DEADLINE
    while call("GET", f"/jobs/{job}", STUDIO)["data"]["status"] != "failed":
        assert time.time() < deadline, "the ACES job never failed"
        time.sleep(0.5)
    driver.get(f"{URL}/jobs/{job}")
    wait(lambda: "ACES" in text("#failed-reason"), "the failed reason")
    shot("08-failed-job")
    click("#tasks .log-button")
    wait(lambda: "Read blend" in text("#task-log") or "ACES" in text("#task-log"), "the failed task's log")
    shot("08-failed-job-log")


def the_workers_page_shows_the_worker_busy_then_idle():
    driver.get(URL + "/workers")
    wait(lambda: finds("#workers tr[data-status]"), "the local worker")
    assert finds("#workers tr[data-status='idle']"), "idle before the render: " + text("#workers")
    assert_labelled()
    shot("09-worker-idle-before")
    driver.execute_script("window.__stayed = true;")
    submit(STUDIO, small("1-4", sampleCount=1024, resolution=[320, 240]))
    wait(lambda: finds("#workers tr[data-status='busy']"), "the worker to show busy", RENDER_DEADLINE)
    shot("10-worker-busy")
    wait(lambda: finds("#workers tr[data-status='idle']"), "the worker to show idle again", RENDER_DEADLINE)
    assert driver.execute_script("return window.__stayed === true"), "the page reloaded"
    shot("11-worker-idle-after")


def a_workspace_sees_only_its_own_jobs():
    log_out()
    log_in(RIVAL)
    wait(lambda: finds("table#jobs"), "the rival's jobs page")
    wait(lambda: "0 jobs" in text("nav[aria-label='Pages']"), "an empty list for the rival")
    assert not finds(f"tr[data-job-id='{state['job']}']")
    shot("12-rival-sees-no-jobs")
    driver.get(f"{URL}/jobs/{state['job']}")
    wait(lambda: "not found" in text("h1").lower(), "the job page to refuse the rival")
    for path in [f"/jobs/{state['job']}", f"/jobs/{state['job']}/tasks", f"/jobs/{state['job']}/downloads"]:
        status = page_fetch("GET", "/api/external/v1" + path, False)
        assert status == 404, (path, status)
    shot("13-rival-refused")


def a_change_without_csrf_is_refused():
    status = page_fetch("POST", "/api/external/v1/uploads", False)
    assert status == 403, status
    status = page_fetch("POST", "/api/external/v1/uploads", True)
    assert status == 200, status
    shot("14-csrf")


def the_admin_sees_the_farm():
    log_out()
    log_in(ADMIN)
    wait(lambda: finds("table#jobs"), "the admin's jobs page")
    wait(lambda: finds(f"tr[data-job-id='{state['job']}']"), "the studio's job in the admin's list")
    shot("15-jobs-admin")
    # A bulk action on a selection: every job of the page to priority 70.
    click("#select-all")
    field = find("#priority")
    field.clear()
    field.send_keys("70")
    click("button[data-action='priority']")
    wait(lambda: driver.execute_script(
        "const cells = [...document.querySelectorAll('#jobs td.priority')];"
        "return cells.length > 1 && cells.every((it) => it.textContent === '70')"), "the selection's new priority")
    assert "Priority set to 70" in text("#action-status"), text("#action-status")
    shot("15-jobs-admin-priority")
    driver.get(URL + "/farm")
    wait(lambda: finds("#jobs-by-status tr"), "jobs by status")
    completed = driver.execute_script(
        "const row = [...document.querySelectorAll('#jobs-by-status tr')]"
        ".find((it) => it.querySelector('th')?.innerText === 'completed');"
        "return row ? Number(row.querySelector('td').innerText) : 0")
    assert completed >= 1, f"completed jobs counted: {completed}"
    assert_labelled()
    wait(lambda: finds("#usage tbody tr"), "usage by workspace")
    # Every job counted by the server: the studio's rendered frames, and the hour's throughput.
    assert "every job counted" in text("#usage + p"), text("#usage + p")
    wait(lambda: int(text("#frames-per-hour") or "0") > 0, "frames finished in the last hour")
    shot("16-farm")
    driver.get(URL + "/workers")
    wait(lambda: finds("#workers button"), "the drain button")
    shot("17-workers-admin")


SCENARIOS = [
    login_refuses_a_wrong_key,
    submit_renders_three_frames_live,
    suspend_and_resume_from_the_page,
    a_failed_job_shows_its_reason_and_log,
    the_workers_page_shows_the_worker_busy_then_idle,
    a_workspace_sees_only_its_own_jobs,
    a_change_without_csrf_is_refused,
    the_admin_sees_the_farm,
]


def main():
    # Debian's Blender has no ACES view transform: this job fails, with a log, while the
    # scenarios before it run.
    state["failed"] = submit(STUDIO, small("1", colorManagementPreset="aces", priority=90))
    try:
        for scenario in SCENARIOS:
            print(f"scenario: {scenario.__name__}", flush=True)
            started = time.time()
            scenario()
            print(f"  ok ({time.time() - started:.1f} s)", flush=True)
    except Exception:
        traceback.print_exc()
        try:
            shot("failure")
            print(driver.get_log("browser"))
        except Exception:
            pass
        return 1
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
