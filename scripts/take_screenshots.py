"""Screenshots of app pages for the README, with Debian's Chromium through Playwright.

Start the app first (bash scripts/start.sh, or streamlit run Home.py), then:

    python scripts/take_screenshots.py http://127.0.0.1:8501 docs/screenshots Home= Training=Training \
        data-curate=Data@Curate

NAME=PATH@TAB clicks the tab labelled TAB before the shot; NAME=PATH~TEXT shoots only the
bordered box that contains TEXT (the Monitor's "Is it working?" panel, for example).
"""
import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-dev-shm-usage"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base_url")
    p.add_argument("out_dir", type=Path)
    p.add_argument("shots", nargs="+", help="NAME=PATH[@TAB][~TEXT]: saves NAME.png of BASE_URL/PATH")
    p.add_argument("--wait-ms", type=int, default=6000, help="time for charts and images to render")
    p.add_argument("--height", type=int, default=1000, help="window height in px")
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": args.height})
        for shot in args.shots:
            name, _, target = shot.partition("=")
            target, _, box = target.partition("~")
            path, _, tab = target.partition("@")
            page.goto(f"{args.base_url.rstrip('/')}/{path}")
            page.locator("h1").first.wait_for(timeout=120_000)  # the first load imports torch
            if tab:
                page.wait_for_timeout(args.wait_ms)
                page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(args.wait_ms)
            out = str(args.out_dir / f"{name}.png")
            if box:
                # A bordered container is a vertical block; the innermost one holding TEXT is the last.
                page.locator("[data-testid=stVerticalBlock]", has_text=box).last.screenshot(path=out)
            else:
                page.screenshot(path=out, full_page=True)
            print(f"saved {args.out_dir / f'{name}.png'}")
        browser.close()


if __name__ == "__main__":
    main()
