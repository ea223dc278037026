"""Several changes in a row, as a person makes them, on every kind of widget of the Latent Lab,
the Monitor and the Map: after each one the widget, the URL and the picture must agree.

(Issue 13: every second change was lost; tests that changed each widget once passed.)
One app server and one browser serve the whole module, over two tiny runs that differ.
"""
import json
import re

import browser
import pytest
from conftest import make_images, train_tiny_run

pytestmark = pytest.mark.browser
if browser.unavailable():
    pytest.skip(browser.unavailable(), allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402  (only once we know it is installed)

SLOW_MS = 90_000  # the first page load imports torch and loads a generator
RUNS = {"tiny-a": 8, "tiny-b": 12}  # run -> its number of training images


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    work = tmp_path_factory.mktemp("state")
    runs = work / "runs"
    runs.mkdir()
    with pytest.MonkeyPatch.context() as env:  # the trainers must not touch the checkout's caches
        env.setenv("GANSCOPE_CACHE", str(work / "cache"))
        env.setenv("GANSCOPE_LOCKS", str(work / "locks"))
        train_tiny_run(runs / "tiny-a", make_images(work / "a", RUNS["tiny-a"], classes=()), "--snapshot-kimg", "0.04")
        train_tiny_run(runs / "tiny-b", make_images(work / "b", RUNS["tiny-b"], classes=(), seed=1), "--kimg", "0.12",
                       "--seed", "1")  # other weights from the start: another picture for the same seed
    with browser.serving(work, runs) as url:
        yield url, runs


@pytest.fixture(scope="module")
def page():
    with browser.chromium_page() as page:
        yield page


def editor_image(page):
    return page.get_by_test_id("stImage").filter(has_text=re.compile(r"^seed \d+$"))


def new_image(page, before: str, timeout_ms: int = 30_000) -> str:
    """Wait for the editor's picture to change from `before`; return the new one's src."""
    page.wait_for_function(
        "before => [...document.querySelectorAll('[data-testid=stImage]')]"
        ".some(e => /^seed \\d+$/.test(e.innerText.trim()) && e.querySelector('img').src !== before)",
        arg=before, timeout=timeout_ms)
    return editor_image(page).locator("img").get_attribute("src")


def choose(page, label: str, option: str, default: str):
    """Pick `option` in the selectbox `label`; the URL names it (or nothing, for the default)."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    key = {"Run": "run"}[label]
    if option == default:
        browser.wait_for_query(page, {}, absent=[key])
    else:
        browser.wait_for_query(page, {key: option})
    expect(page.get_by_role("combobox", name=label, exact=True)).to_have_value(option)
    expect(page.get_by_role("combobox", name=label, exact=True)).to_have_count(1)  # never two pickers at once


def nudge(page, slider, key: str, presses: int, values: list[str]):
    """Move a slider one step at a time; after each step the slider and the URL agree."""
    for value in values:
        slider.focus()
        page.keyboard.press(presses)
        expect(slider).to_have_value(value)
        if float(value) == 0:
            browser.wait_for_query(page, {}, absent=[key])
        else:
            browser.wait_for_query(page, {key: value})


def newest_first(runs_dir) -> list[str]:
    status = {n: json.loads((runs_dir / n / "status.json").read_text()) for n in RUNS}
    return sorted(RUNS, key=lambda n: status[n]["updated_at"], reverse=True)


def test_latent_lab_keeps_every_change(app, page, tmp_path):
    with browser.screenshot_on_failure(page, tmp_path / "failure.png"):
        url, runs_dir = app
        default_run = newest_first(runs_dir)[0]
        page.goto(f"{url}/Latent_Lab")
        seed = page.get_by_label("Seed", exact=True)
        expect(seed).to_be_visible(timeout=SLOW_MS)
        src = editor_image(page).locator("img").get_attribute("src")

        for value in (7, 9, 11, 13):  # number box: type + Enter, four times
            seed.fill(str(value))
            seed.press("Enter")
            browser.wait_for_query(page, {"seed": str(value)})
            expect(editor_image(page)).to_have_text(f"seed {value}")
            expect(seed).to_have_value(str(value))
            src = new_image(page, src)

        psi = page.get_by_role("slider", name="Truncation ψ")
        for value in ("0.95", "0.9", "0.85"):  # slider: one key press at a time
            nudge(page, psi, "psi", "ArrowLeft", [value])
            src = new_image(page, src)

        direction = page.get_by_role("slider", name="Direction 1")
        for value in ("0.1", "0.2", "0.3"):
            nudge(page, direction, "sefa1", "ArrowRight", [value])
            src = new_image(page, src)
        sefa = src

        for method in ("GANSpace", "SeFa", "GANSpace"):  # radio: the picture follows at once, not one click late
            page.get_by_text(method, exact=True).click()
            if method == "SeFa":
                browser.wait_for_query(page, {}, absent=["method"])
            else:
                browser.wait_for_query(page, {"method": method})
            expect(page.get_by_role("radio", name=method)).to_be_checked()
            src = new_image(page, src, SLOW_MS)  # GANSpace's directions are computed once (2,000 latents)
            if method == "SeFa":
                assert src == sefa, "back on SeFa, the picture is SeFa's again"
        page.get_by_text("SeFa", exact=True).click()
        browser.wait_for_query(page, {"sefa1": "0.3"}, absent=["method"])  # SeFa's edits were kept
        src = new_image(page, src)

        page.get_by_role("button", name="Reset edits").click()  # button: slider, URL and picture reset together
        browser.wait_for_query(page, {"seed": "13"}, absent=["sefa1"])
        expect(direction).to_have_value("0")
        src = new_image(page, src)
        nudge(page, page.get_by_role("slider", name="Direction 2"), "sefa2", "ArrowRight", ["0.1"])
        assert "sefa1" not in browser.query(page), "the next nudge must not bring the old edits back"
        src = new_image(page, src)

        page.get_by_role("button", name="3", exact=True).click()  # a seed from the grid
        browser.wait_for_query(page, {"seed": "3"})
        expect(seed).to_have_value("3")
        src = new_image(page, src)

        other = next(n for n in RUNS if n != default_run)
        for run in (other, default_run, other, default_run):  # select: the run picker, four times
            choose(page, "Run", run, default_run)
            src = new_image(page, src)
            expect(page.get_by_label("Seed", exact=True)).to_have_value("3")  # the view stays

        # Another page and back: the Lab is as it was left.
        page.get_by_role("link", name="Map").click()
        expect(page.get_by_role("heading", name="Map")).to_be_visible(timeout=SLOW_MS)
        page.get_by_role("link", name="Latent Lab").click()
        expect(page.get_by_label("Seed", exact=True)).to_have_value("3", timeout=SLOW_MS)
        browser.wait_for_query(page, {"seed": "3", "sefa2": "0.1"})


def step_metric(page):
    label = page.get_by_test_id("stMetricLabel").get_by_text("Step", exact=True)
    return page.get_by_test_id("stMetric").filter(has=label).get_by_test_id("stMetricValue")


def test_monitor_run_picker_keeps_every_change(app, page, tmp_path):
    with browser.screenshot_on_failure(page, tmp_path / "failure.png"):
        url, runs_dir = app
        order = newest_first(runs_dir)
        steps = {n: json.loads((runs_dir / n / "status.json").read_text())["step"] for n in RUNS}
        assert len(set(steps.values())) == 2, "the two runs must differ to tell them apart"
        page.goto(f"{url}/Training")
        expect(step_metric(page)).to_have_text(str(steps[order[0]]), timeout=SLOW_MS)
        for run in (order[1], order[0], order[1], order[0], order[1]):
            choose(page, "Run", run, order[0])
            expect(step_metric(page)).to_have_text(str(steps[run]))


def plotted_counts(page) -> dict:
    return page.wait_for_function(
        "() => { const g = document.querySelector('.js-plotly-plot');"
        " if (!g || !g._fullData) return null;"
        " return Object.fromEntries(g._fullData.map(t => [t.name, t._length])); }", timeout=SLOW_MS).json_value()


def test_map_run_picker_keeps_every_change(app, page, tmp_path):
    with browser.screenshot_on_failure(page, tmp_path / "failure.png"):
        url, runs_dir = app
        order = newest_first(runs_dir)
        page.goto(f"{url}/Map?map=PCA&fake=100")
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=SLOW_MS)
        for run in (order[1], order[0], order[1], order[0]):
            choose(page, "Run", run, order[0])
            page.wait_for_function(
                "n => { const g = document.querySelector('.js-plotly-plot');"
                " return g && g._fullData && g._fullData.some(t => t.name === 'real' && t._length === n); }",
                arg=RUNS[run], timeout=SLOW_MS)
            assert plotted_counts(page) == {"real": RUNS[run], "latest.pt": 100}
            # A set of 8 or 12 images offers its own size as the largest, never 2,000.
            expect(page.get_by_text(f"Real images (of {RUNS[run]})")).to_be_visible()
