"""Screenshots a ktplus HTML report in headless Chromium (the README's image).

    python docs/screenshot.py runs/digits/report.html docs/report.png [HEIGHT]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def main(page: str, out: str, height: int = 2600) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--user-data-dir={tempfile.mkdtemp()}", f"--window-size=1280,{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(Path(page).resolve().as_uri())
        time.sleep(3)  # plotly draws after load
        driver.save_screenshot(out)
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
