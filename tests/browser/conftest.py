"""A real browser: Debian's chromium driven through Debian's chromium-driver with selenium.

Selenium Manager must neither download a driver nor send statistics (there is no network), so the
driver is given explicitly and SE_OFFLINE / SE_AVOID_STATS are set. Screenshots of every page go to
test-artifacts/browser/ (or $COBRADOR_TEST_ARTIFACTS/browser/), kept by CI as artifacts.

The card tests also watch where a card number goes: `request_log` (every request cobrador's server
receives), `log_records` (every record its threads log) and `database_text` (every row), beside the
Pagar.me fake (`pagarme`) whose tokens endpoint the browser posts the card to.
"""

import io
import logging
import os
import threading
from pathlib import Path

import pytest
from django.apps import apps
from django.core.handlers.wsgi import WSGIHandler

from cobrador.core import clock
from cobrador.gateways.pagarme import JWKS_CACHE
from tests.fakes.pagarme import FakePagarme
from tests.subscriptions.conftest import utc

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


@pytest.fixture
def server(live_server, settings):
    settings.PUBLIC_URL = live_server.url
    clock.set(utc(2026, 3, 1, 12))
    yield live_server
    clock.set(None)


@pytest.fixture
def pagarme(settings):
    with FakePagarme() as fake:
        settings.PAGARME_BASE_URL, settings.PAGARME_JWKS_URL = fake.url, fake.jwks_url
        settings.PROVIDER_ALLOW_PRIVATE = True
        yield fake
    JWKS_CACHE.clear()


@pytest.fixture
def request_log(monkeypatch):
    """cobrador's request log: everything its WSGI handler receives while the test runs."""
    received = []
    original = WSGIHandler.__call__

    def recording(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # read once here and handed on unchanged
        headers = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k.startswith("CONTENT_")}
        received.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}?{environ.get('QUERY_STRING', '')} "
                        f"{headers} {body.decode('utf-8', 'replace')}")
        return original(self, environ, start_response)

    monkeypatch.setattr(WSGIHandler, "__call__", recording)
    return received


@pytest.fixture
def log_records():
    """Every log record cobrador's server threads emit (the test's own thread logs what selenium types)."""
    records = []
    test_thread = threading.get_ident()

    class Keep(logging.Handler):
        def emit(self, record):
            if record.thread != test_thread:
                records.append(self.format(record) + " " + repr(record.__dict__))

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(old_level)


def database_text() -> str:
    """Every value of every row of every table cobrador has, as text."""
    parts = []
    for model in apps.get_models():
        fields = [f.attname for f in model._meta.concrete_fields]  # noqa: SLF001
        parts.extend(repr(row) for row in model.objects.values_list(*fields))
    return "\n".join(parts)
