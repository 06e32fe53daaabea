"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

The live server runs in a thread of this process, so the settings fixture and the peer
store fixture apply to it too. Playwright's sync API keeps an event loop running in this
thread, which Django would otherwise take for an async context and refuse ORM calls in.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.plugin import SERVICE_TOKEN

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("SORCHA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
PASSWORD = "a-long-browser-test-password-1"
# The page refreshes this often in tests (its query parameter `refresh`, in milliseconds).
REFRESH_MS = 700
PAGE_PATH = f"/admin/peers/peernetwork/?refresh={REFRESH_MS}"

expect.set_options(timeout=10_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # On a developer's machine without Chromium the browser tests are skipped, saying why;
    # CI installs Chromium itself (.ci/run), so there a missing browser fails instead.
    if shutil.which(CHROMIUM) is None and not os.environ.get("CI"):
        skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def operator(transactional_db: None) -> User:
    """A staff superuser, as `manage.py createsuperuser` makes."""
    return User.objects.create_superuser("operator", "operator@example.org", PASSWORD)


@pytest.fixture
def node_api(live_server: Any) -> Iterator[requests.Session]:
    """The live node's API with the service token, as another service or an operator's script calls it."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {SERVICE_TOKEN}"
    yield session
    session.close()


def log_in(page: Page, base_url: str, username: str, password: str = PASSWORD, next_path: str = PAGE_PATH) -> None:
    """Through the admin's login form, as a person would."""
    page.goto(f"{base_url}/admin/login/?{urlencode({'next': next_path})}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
