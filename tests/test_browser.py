"""End to end in a real browser: launch a run from the Training page, watch it train, stop it."""
import json
import re
from contextlib import contextmanager

import pytest

import browser
from browser import alive, app_server, browser_page, runs_dir  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
if browser.unavailable():
    pytest.skip(browser.unavailable(), allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402  (only once we know it is installed)

SLOW_MS = 90_000  # starting torch and the first metrics on a busy CPU


@contextmanager
def screenshot_on_failure(page, path):
    """Turn any failure into an AssertionError that names a screenshot of the page."""
    try:
        yield
    except Exception as e:
        page.screenshot(path=str(path), full_page=True)
        raise AssertionError(f"{e}\nscreenshot: {path}") from e


def metric_value(page, label: str):
    """The value element of the st.metric with this exact label."""
    label_el = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    return page.get_by_test_id("stMetric").filter(has=label_el).get_by_test_id("stMetricValue")


def as_int(text: str) -> int:
    return int(text.replace(",", "").strip())


def launch_run(page, name: str):
    page.get_by_role("tab", name="New run").click()
    page.get_by_label("Run name").fill(name)
    expect(page.get_by_role("radio", name="Built-in emoji")).to_be_checked()
    page.get_by_role("combobox", name="Resolution").click()
    page.get_by_role("option", name="32", exact=True).click()
    page.get_by_label("Length (kimg)").fill("1000")
    # The name typed first must survive the later choices.
    expect(page.get_by_label("Run name")).to_have_value(name)
    page.get_by_role("button", name="Launch").click()


def test_launch_watch_and_stop_a_run(app_server, browser_page, runs_dir, tmp_path):
    page = browser_page
    with screenshot_on_failure(page, tmp_path / "failure.png"):
        page.goto(f"{app_server}/Training")
        launch_run(page, "e2e-run")

        page.get_by_role("tab", name="Monitor").click()
        expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(re.compile(r"^e2e-run\b"))
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=SLOW_MS)

        step = metric_value(page, "Step")
        first = step.inner_text()
        expect(step).not_to_have_text(first, timeout=SLOW_MS)  # the monitor refreshes itself
        assert as_int(step.inner_text()) > as_int(first)

        page.get_by_role("button", name="Stop").click()
        expect(metric_value(page, "State")).to_have_text("stopped", timeout=SLOW_MS)

    status = json.loads((runs_dir / "e2e-run" / "status.json").read_text())
    assert status["state"] == "stopped"
    assert not alive(status["pid"]), f"trainer {status['pid']} still running after Stop"


def editor_image_src(page) -> str:
    """The src of the Latent Lab's main image (captioned 'seed N'); it changes with the picture."""
    image = page.get_by_test_id("stImage").filter(has_text=re.compile(r"^seed \d+$")).locator("img")
    return image.get_attribute("src")


def test_latent_lab_slider_changes_the_image(app_server, browser_page, runs_dir, tmp_path):
    from conftest import make_images, train_tiny_run
    train_tiny_run(runs_dir / "tiny", make_images(tmp_path / "images", 8, classes=()))
    page = browser_page
    with screenshot_on_failure(page, tmp_path / "lab-failure.png"):
        page.goto(f"{app_server}/Latent_Lab")
        slider = page.get_by_role("slider", name="Direction 1")
        expect(slider).to_be_visible(timeout=SLOW_MS)
        before = editor_image_src(page)
        slider.focus()
        for _ in range(10):  # ten steps of 0.1: one standard deviation along the top direction
            page.keyboard.press("ArrowRight")
        expect(slider).to_have_value("1", timeout=10_000)
        page.wait_for_function(
            "before => [...document.querySelectorAll('[data-testid=stImage]')]"
            ".some(e => /^seed \\d+$/.test(e.innerText.trim()) && e.querySelector('img').src !== before)",
            arg=before, timeout=30_000)
        assert editor_image_src(page) != before
        # The view is in the link. The URL update is its own message to the browser: wait for it.
        page.wait_for_url(re.compile(r"edits=0(%3A|:)1(&|$)"), timeout=30_000)


def test_map_page_shows_real_and_generated_points(app_server, browser_page, runs_dir, tmp_path):
    from conftest import make_images, train_tiny_run
    train_tiny_run(runs_dir / "tiny", make_images(tmp_path / "images", 16, classes=()))
    page = browser_page
    with screenshot_on_failure(page, tmp_path / "map-failure.png"):
        page.goto(f"{app_server}/Map?map=pca&fake=100")
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=SLOW_MS)
        # Read the plotted traces from the graph element itself (WebGL draws are not in the DOM).
        counts = page.wait_for_function(
            "() => { const g = document.querySelector('.js-plotly-plot');"
            " if (!g || !g._fullData) return null;"  # x/y arrive binary-encoded: use plotly's own count
            " return Object.fromEntries(g._fullData.map(t => [t.name, t._length])); }", timeout=SLOW_MS).json_value()
        assert counts == {"real": 16, "latest.pt": 100}, counts
