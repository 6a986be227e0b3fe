"""Console tests: catalogues compiled first, and a real Chromium (Debian's) driven by pytest-playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, BrowserType, Playwright, sync_playwright

FAILURES = Path(__file__).resolve().parent / "failures"  # git-ignored
# Screenshots for the README are written only when this names a folder (see README, "Console").
SHOTS_DIR = os.environ.get("CONSOLE_SCREENSHOTS_DIR", "")


@pytest.fixture(scope="session", autouse=True)
def _catalogues() -> None:
    """Before any gateway starts: its processes read the compiled .mo files."""
    call_command("compile_catalogues", verbosity=0)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium is missing: apt-get install -y chromium fonts-noto-cjk")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Playwright cannot download its own browser here: drive the distribution's.
    return {**browser_type_launch_args, "executable_path": chromium_path(), "args": ["--no-sandbox"]}


# pytest-playwright keeps one Playwright for the whole session, and its sync API marks an event loop
# as running in the main thread for as long as it lives: every async test after it would then fail
# to start its own loop. Here Playwright lives for one test module, and the browser with it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Django takes the marked loop for an async context; the tests' own ORM calls are synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        yield pw
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="module")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    return lambda **kwargs: browser_type.launch(**{**browser_type_launch_args, **kwargs})


@pytest.fixture(scope="module")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 860}, "locale": "en-US"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def console_errors(request: pytest.FixtureRequest, page) -> Iterator[list[str]]:
    """Every console error and uncaught exception of the page; a screenshot if the test failed."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    yield errors
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        FAILURES.mkdir(exist_ok=True)
        page.screenshot(path=str(FAILURES / f"{request.node.name}.png"), full_page=True)


def shot(page, name: str) -> None:
    if SHOTS_DIR:
        Path(SHOTS_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS_DIR) / f"{name}.png"))
