"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real `fal-emulator serve`,
while the unmodified fal_client 1.0.3 runs.

One server and one Chromium serve the whole module. The server has a control token, as it has when it listens
beyond loopback, so every test also shows that the page works with the token and only with it. Playwright
never downloads a browser here: it launches the system's `chromium` (`scripts/system-packages` installs it).
When either is missing the tests skip, saying which.

`UPDATE_SCREENSHOTS=1` writes the README's screenshot (`docs/images/dashboard.png`) from the first test.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn
from PIL import Image

from fal_emulator.control import EmulatorControl
from fal_emulator.http.app import create_app
from fal_emulator.server import bind
from fal_emulator.settings import Settings
from fal_emulator.submission import SubmitOptions
from fal_emulator.testing import EmulatorProcess
from tests.conftest import CATALOG, SEED_REQUESTS

TOKEN = "dashboard-test-token"
I2V = "fal-ai/veo3/image-to-video"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "dashboard.png"
WAIT = 20_000  # milliseconds: the longest a page may take to show a change (a loaded CI machine)
STORED = 10_000  # requests stored for the first-paint measurement
# Milliseconds from navigation to the first contentful paint, once the browser has recorded it.
FIRST_PAINT = """() => new Promise((resolve) => new PerformanceObserver((list, observer) => {
  const [entry] = list.getEntriesByName('first-contentful-paint');
  if (entry) { observer.disconnect(); resolve(entry.startTime); }
}).observe({type: 'paint', buffered: true}))"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path_factory.mktemp("ui"), extra_args=("--control-token", TOKEN))
    with process:
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (the test extra)")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("needs Debian's chromium on PATH (scripts/system-packages installs it as root)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def control(server: EmulatorProcess) -> Iterator[EmulatorControl]:
    assert server.listening is not None
    with EmulatorControl(server.listening.http_url, token=TOKEN) as client:
        client.reset()
        yield client


@pytest.fixture
def ui(server: EmulatorProcess) -> str:
    assert server.listening is not None
    return f"{server.listening.http_url}/_emulator/ui"


@pytest.fixture
def page(browser: Any, ui: str, control: EmulatorControl) -> Iterator[Any]:
    """A fresh browser context that opened the dashboard with `?token=` once (the cookie keeps it)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(WAIT)
    problems: list[str] = []  # script errors and refused resources (a Content-Security-Policy violation, say)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.goto(f"{ui}?token={TOKEN}")
    assert tab.url == ui  # redirected to the URL without the token
    try:
        yield tab
    finally:
        context.close()
    assert [problem for problem in problems if "status of 400" not in problem] == []


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT)
    return playwright_expect


def count_sse_events(page: Any) -> None:
    page.evaluate("window.sseEvents = 0; document.body.addEventListener('htmx:sseMessage', () => window.sseEvents++)")


def test_a_subscribe_appears_live_completes_and_plays_its_video(
    page: Any, fal: ModuleType, control: EmulatorControl, ui: str
) -> None:
    count_sse_events(page)
    ids: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(fal.subscribe, I2V, arguments=SEED_REQUESTS[I2V], with_logs=True, on_enqueue=ids.append)
        row = page.locator("#requests tr[data-request-id]")
        expect()(row).to_have_count(1)  # it appears without a reload, pushed by the server (SSE)
        expect()(row).to_have_attribute("data-status", "COMPLETED")
        result = running.result(timeout=60)
    assert page.evaluate("window.sseEvents") > 0  # the page was told, not reloaded (the counter survived)
    [request_id] = ids
    assert row.get_attribute("data-request-id") == request_id
    expect()(row).to_contain_text("$6.00")  # 8 s of Veo 3 with audio at prices.yaml's rate

    page.get_by_role("link", name=request_id).click()
    page.wait_for_function(
        "() => { const v = document.querySelector('#detail video'); return v && v.readyState >= 2 && v.duration > 0 }"
    )
    assert page.evaluate("document.querySelector('#detail video').duration") == pytest.approx(8, abs=0.1)
    # A COMPLETED request's step/complete/fail/cancel buttons are inert (the control plane would answer 409).
    expect()(page.locator("#detail .request-controls button", has_text="Cancel")).to_have_css("pointer-events", "none")
    assert result["video"]["url"].endswith(page.evaluate("document.querySelector('#detail video').getAttribute('src')"))
    seeked = page.evaluate(
        """() => new Promise((resolve) => { const v = document.querySelector('#detail video');
             v.addEventListener('seeked', () => resolve(v.currentTime), {once: true}); v.currentTime = 6; })"""
    )
    assert seeked == pytest.approx(6, abs=0.5)
    assert any(entry["status"] == 206 for entry in control.journal(method="GET")), "the video was read by Range"
    timeline = page.locator("#detail .timeline li .status")
    expect()(timeline).to_have_text(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"])
    expect()(page.locator("#detail .logs")).to_contain_text("Request completed.")

    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        decorate_for_screenshot(control, fal, page)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))


def decorate_for_screenshot(control: EmulatorControl, fal: ModuleType, page: Any) -> None:
    """A few more requests of other kinds, so the README's screenshot shows what the list looks like."""
    control.script("fal-ai/veo3.1/fast/image-to-video", ["content_policy_violation", "manual"])
    for endpoint in ("fal-ai/veo3.1/fast/image-to-video", "fal-ai/veo3.1/fast/image-to-video"):
        fal.submit(endpoint, arguments=SEED_REQUESTS[endpoint])
    expect()(page.locator("#requests tr[data-request-id]")).to_have_count(3)
    expect()(page.locator("#requests .error-type")).to_have_text("content_policy_violation")
    page.evaluate("document.querySelector('#detail video').currentTime = 3")


def test_a_click_on_fail_makes_fal_client_raise_that_error(
    page: Any, fal: ModuleType, control: EmulatorControl, ui: str
) -> None:
    page.locator("form[data-name=policy] input[name=policy]").fill("manual")  # the page's own policy control
    page.locator("form[data-name=policy] button").click()
    expect()(page.locator("#control-result")).to_have_text("PUT /_emulator/policy → 200")
    assert control.policy()["default"] == "manual"
    ids: list[str] = []
    arguments = {**SEED_REQUESTS[I2V], "image_url": fal.encode_image(Image.new("RGB", (96, 64), (200, 40, 90)))}
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(fal.subscribe, I2V, arguments=arguments, on_enqueue=ids.append)
        row = page.locator("#requests tr[data-request-id]")
        expect()(row).to_have_attribute("data-status", "IN_QUEUE")
        row.get_by_role("link").click()
        image = page.locator("#detail .images img")  # the input image, from its data: URI
        expect()(image).to_have_js_property("naturalWidth", 96)
        fail = page.locator("#detail form[data-action=fail]")
        fail.locator("select").select_option("content_policy_violation")
        fail.get_by_role("button", name="Fail").click()
        with pytest.raises(fal.FalClientHTTPError) as caught:
            running.result(timeout=60)
    assert caught.value.status_code == 422
    assert caught.value.error_type == "content_policy_violation"
    expect()(page.locator("#detail-status")).to_have_text("COMPLETED")
    expect()(page.locator("#detail .error-type").first).to_have_text("content_policy_violation")
    expect()(page.locator("#error-body")).to_contain_text("flagged by a content checker")
    expect()(page.locator(f'#requests tr[data-request-id="{ids[0]}"]')).to_contain_text("content_policy_violation")
    expect()(page.locator("#totals")).to_contain_text("content_policy_violation")


def test_the_clock_policy_outcome_and_reset_controls_call_the_control_plane(
    page: Any, control: EmulatorControl
) -> None:
    def press(form: str, expected: str) -> None:
        page.locator(f"{form} button").click()
        expect()(page.locator("#control-result")).to_have_text(expected)

    press("form[data-control$='/clock'][data-body*='true']", expected="POST /_emulator/clock → 200")
    expect()(page.locator("#state .frozen")).to_have_text("frozen")
    before = control.clock()["now"]
    page.locator("input[name=advance]").fill("90")
    press("form:has(input[name=advance])", expected="POST /_emulator/clock → 200")
    assert control.clock()["now"] == pytest.approx(before + 90)
    page.locator("input[name=scale]").fill("20")
    press("form:has(input[name=scale])", expected="POST /_emulator/clock → 200")
    assert control.clock()["scale"] == 20
    outcomes = page.locator("form[data-name=outcomes]")
    outcomes.locator("textarea").fill("rate_limited\ncontent_policy_violation,latency:1\nok")
    press("form[data-name=outcomes]", expected="POST /_emulator/outcomes → 200")
    assert control.outcomes() == {"*": 3}
    expect()(page.locator("#state")).to_contain_text("*: 3")
    outcomes.locator("select[name=route]").select_option("status")  # the next status polls, any request
    outcomes.locator("textarea").fill("timeout_408")
    press("form[data-name=outcomes]", expected="POST /_emulator/outcomes → 200")
    assert control.outcomes() == {"*": 3, "status:*": 1}
    outcomes.locator("textarea").fill("no_such_scenario")
    outcomes.get_by_role("button").click()
    expect()(page.locator("#control-result")).to_contain_text("→ 400: unknown scenario 'no_such_scenario'")
    press("form[data-control^='DELETE']", expected="DELETE /_emulator/outcomes → 200")
    assert control.outcomes() == {}
    press("form[data-control$='/reset']", expected="POST /_emulator/reset → 200")
    assert control.clock()["frozen"] is False and control.clock()["scale"] == 1


def test_controls_beyond_loopback_need_the_token(browser: Any, ui: str, control: EmulatorControl) -> None:
    context = browser.new_context()
    try:
        stranger = context.new_page()
        assert stranger.goto(ui).status == 401
        expect()(stranger.locator("h1")).to_have_text("This dashboard needs the control token")
        assert stranger.goto(f"{ui}?token=wrong").status == 401
        assert stranger.goto(f"{ui}/requests").status == 401
        answer = stranger.evaluate("async () => (await fetch('/_emulator/reset', {method: 'POST', body: '{}'})).status")
        assert answer == 401  # the control plane itself refuses a call without the header
        assert stranger.goto(f"{ui}?token={TOKEN}").status == 200
        stranger.locator("form[data-control$='/clock'][data-body*='true'] button").click()  # Freeze
        expect()(stranger.locator("#control-result")).to_have_text("POST /_emulator/clock → 200")
        assert control.clock()["frozen"] is True
    finally:
        context.close()


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard's URL on a second emulator that stores STORED requests (a tenth failed, a hundredth still
    queued), served over a real socket by uvicorn in a thread. The requests are submitted in-process through
    the service (what a submit route calls): ten thousand HTTP submits would take the whole CI budget."""
    settings = Settings(state_dir=tmp_path_factory.mktemp("crowded"), policy="instant", seed=3, control_token=TOKEN)
    app = create_app(settings, catalog=CATALOG)
    emulator = app.state.emulator
    body = json.dumps(SEED_REQUESTS[I2V]).encode()
    for index in range(STORED):
        scenario = "manual" if index % 100 == 0 else "content_policy_violation" if index % 10 == 0 else None
        emulator.submit(I2V, body, "http://127.0.0.1", SubmitOptions(scenario=scenario))
    listener = bind("127.0.0.1", 0)  # listening already: connections wait in its backlog until uvicorn serves
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/_emulator/ui"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def test_ten_thousand_requests_first_paint_and_pages(
    browser: Any, crowded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(f"{crowded}?token={TOKEN}")  # sets the cookie, then the measured load
        page.goto(crowded)
        first_paint = page.evaluate(FIRST_PAINT)
        expect()(page.locator("#page-range")).to_have_text(f"1–50 of {STORED:,}")
        expect()(page.locator("#requests tr[data-request-id]")).to_have_count(50)
        expect()(page.locator("#totals")).to_contain_text(f"{STORED:,}")
        page.get_by_role("link", name="older →").click()
        expect()(page.locator("#page-range")).to_have_text(f"51–100 of {STORED:,}")
        page.locator("#filters select[name=status]").select_option("IN_QUEUE")  # applies at once
        expect()(page.locator("#page-range")).to_have_text(f"1–50 of {STORED // 100:,}")
        expect()(page.locator("#requests tr[data-request-id]").first).to_contain_text("manual")
    finally:
        context.close()
    with capsys.disabled():
        print(f"\n[dashboard] first contentful paint with {STORED:,} stored requests: {first_paint:.0f} ms")
    assert first_paint > 0  # it painted; the figure is the report (budget 1 s: benchmarks/dashboard.py), not a test
