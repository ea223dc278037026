"""End to end in a real browser: launch a run from the Training page, watch it train, stop it.

(The Latent Lab, the Monitor's picker and the Map are driven in test_browser_state.py.)"""
import json

import browser
import pytest
from browser import alive, app_server, browser_page, runs_dir, screenshot_on_failure  # noqa: F401

pytestmark = pytest.mark.browser
if browser.unavailable():
    pytest.skip(browser.unavailable(), allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402  (only once we know it is installed)

SLOW_MS = 90_000  # starting torch and the first metrics on a busy CPU


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

        # Launch opens the new run's monitor and says so.
        expect(page.get_by_role("tab", name="Monitor", selected=True)).to_be_visible(timeout=SLOW_MS)
        expect(page.get_by_text("Started e2e-run")).to_be_visible()
        expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value("e2e-run")
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
