"""/docs in a real headless Chromium, as users first try the service: Authorize with
the password flow, then "Try it out" on GET /users/me. On the first variant only: no
option changes the page or its scripts (each variant's own tests check that its
/docs loads and serves its assets itself). A screenshot of the answered call is kept
in TEMPLATE_TEST_ARTIFACTS (default: test-artifacts/)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait

from .support import TEMPLATE, http, variant_id, variant_params

pytestmark = pytest.mark.parametrize("variant", variant_params(first_only=True))

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_HINT = (
    "Chromium and its driver not found; install them with "
    "`sudo apt-get install -y chromium chromium-driver` (Debian)"
)
ARTIFACTS = Path(os.environ.get("TEMPLATE_TEST_ARTIFACTS", TEMPLATE / "test-artifacts"))

#: No connection leaves the machine: only the service under test is reachable.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1400",
]

USERS_ME = "#operations-users-read_current_user"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    binary = next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        if os.environ.get("CI"):
            pytest.fail(f"CI must prove /docs in a browser. {BROWSER_HINT}", pytrace=False)
        pytest.skip(f"NOT RUN: {BROWSER_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        session = webdriver.Chrome(options=options, service=Service(driver))
        yield session
        session.quit()


def test_docs_authorize_and_try_out_users_me_in_a_real_browser(
    variant: dict[str, str], serve: Callable[..., str], browser: WebDriver
) -> None:
    base = serve("docs")
    credentials = {"username": "docsuser", "password": "a docs password"}
    assert http("POST", f"{base}/users/", json_body=credentials)[0] == 201
    wait = WebDriverWait(browser, 20)
    browser.get(f"{base}/docs")

    # Authorize: the OAuth2 password flow's dialog, filled in and submitted.
    wait.until(visible.element_to_be_clickable((By.CSS_SELECTOR, "button.authorize"))).click()
    username = wait.until(visible.visibility_of_element_located((By.ID, "oauth_username")))
    username.send_keys(credentials["username"])
    browser.find_element(By.ID, "oauth_password").send_keys(credentials["password"])
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.authorize").click()
    logout = (By.CSS_SELECTOR, 'button[aria-label="Remove authorization"]')
    wait.until(visible.visibility_of_element_located(logout))
    browser.find_element(By.CSS_SELECTOR, "button.btn-done").click()

    # GET /users/me: expand, "Try it out", "Execute".
    browser.find_element(By.CSS_SELECTOR, f"{USERS_ME} .opblock-summary-control").click()
    for button in (".try-out__btn", ".execute"):
        clickable = (By.CSS_SELECTOR, f"{USERS_ME} {button}")
        wait.until(visible.element_to_be_clickable(clickable)).click()
    answer = (By.CSS_SELECTOR, f"{USERS_ME} .live-responses-table .response")
    response = wait.until(visible.visibility_of_element_located(answer))

    browser.execute_script("arguments[0].scrollIntoView()", response)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"docs-{variant_id(variant)}.png"))
    assert response.find_element(By.CSS_SELECTOR, ".response-col_status").text == "200"
    body = response.find_element(By.CSS_SELECTOR, ".response-col_description").text
    assert '"username": "docsuser"' in body
