"""The README's screenshots (docs/screenshots/*.png): each page's first screen at 1440x900 in Chromium.

    .venv/bin/python benchmarks/screenshots.py [--out docs/screenshots] [PAGE ...]

Starts `trainsim dashboard` on a free port (benchmarks/browser.py), opens each page as a visitor would,
waits until it settled and saves what the first screen shows. The Calibration page is shown with its
example records loaded (a CPU sweep, not a GPU calibration).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from browser import VIEWPORT, chromium, dashboard, settle

# file name -> url path (the Planner is the root page)
PAGES = {"planner": "", "compare": "compare", "explorer": "explorer", "serving": "serving",
         "posttraining": "posttraining", "scaling": "scaling", "calibration": "calibration",
         "validation": "validation", "catalog": "catalog"}
EXAMPLE_BUTTON = "Load the example records"


def shoot(browser, url: str, name: str, out: Path) -> Path:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{url}/{PAGES[name]}")
    settle(page)
    if name == "calibration":
        page.get_by_role("button", name=EXAMPLE_BUTTON).click()
        page.get_by_text("Fit", exact=True).first.wait_for(timeout=120_000)
        settle(page)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    page.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs" / "screenshots")
    parser.add_argument("pages", nargs="*", metavar="PAGE", help=f"default: all of {', '.join(PAGES)}")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with dashboard() as url, chromium() as browser:
        for name in args.pages or PAGES:
            print(shoot(browser, url, name, args.out))


if __name__ == "__main__":
    main()
