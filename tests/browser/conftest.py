"""A real browser: Debian's chromium driven through Debian's chromium-driver with selenium.

Selenium Manager must neither download a driver nor send statistics (there is no network), so the
driver is given explicitly and SE_OFFLINE / SE_AVOID_STATS are set. Screenshots of every page go to
test-artifacts/browser/ (or $COBRADOR_TEST_ARTIFACTS/browser/), kept by CI as artifacts.
"""

import os
from pathlib import Path

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("COBRADOR_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}

needs_browser = pytest.mark.skipif(
    not os.path.exists(CHROMEDRIVER),
    reason=f"no {CHROMEDRIVER}: apt-get install -y chromium chromium-driver to run the browser tests")


@pytest.fixture(params=sorted(SIZES))
def browser(request):
    driver = start_browser(request.param)
    yield driver
    driver.quit()


def start_browser(size_name: str):
    """Headless Chromium at one of SIZES; the caller quits it."""
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver  # noqa: PLC0415 - only when a browser test runs (the package may be absent)
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    width, height = SIZES[size_name]
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--lang=pt-BR"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.size_name = size_name
    return driver


def screenshot(driver, name: str) -> Path:
    folder = ARTIFACTS / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{driver.size_name}.png"
    driver.save_screenshot(str(path))
    return path


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
