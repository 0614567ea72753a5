"""Real headless Chromium, as people use the service.

/docs, as users first try the service: Authorize with the password flow, then "Try it
out" on GET /users/me. On the first variant only: no option changes the page or its
scripts (each variant's own tests check that its /docs loads and serves its assets
itself).

The pages under /account, on one variant of each structure (which moves their code),
both databases among them: one person's story from registering to a forgotten
password, with the mails caught by an SMTP server in this process; a login elsewhere
seen and ended from the account page; forms posted by a page of another origin
refused; the generated README's fetch calls for a browser app, run as written; an
authenticator app set up from the account page (its key read from the page, its
codes computed here as the app computes them), then signing in with a code, and
with a recovery code. Every page seen passes axe-core (no "serious" or "critical"
violation) and does not scroll sideways on a phone.

Screenshots are kept in TEMPLATE_TEST_ARTIFACTS (default: test-artifacts/)."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path

import pyotp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait

from .support import TEMPLATE, Baked, call, free_port, http, variant_id, variant_params

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_HINT = (
    "Chromium and its driver not found; install them with "
    "`sudo apt-get install -y chromium chromium-driver` (Debian)"
)
ARTIFACTS = Path(os.environ.get("TEMPLATE_TEST_ARTIFACTS", TEMPLATE / "test-artifacts"))
DESKTOP = (1280, 1400)
PHONE = (390, 844)

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
    f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
]

USERS_ME = "#operations-users-read_current_user"

#: axe-core, as the selenium-axe-python package ships it (requirements-test.txt).
AXE_JS = files("selenium_axe_python") / "axe-core" / "axe.min.js"
#: What axe-core finds that fails a page (it also reports "moderate" and "minor").
BLOCKING = ("serious", "critical")
#: Runs in the page after axe.min.js: its violations, with what a reader needs.
AXE_RUN = """
return axe.run(document, {resultTypes: ["violations"]}).then(results => ({
  version: axe.version,
  violations: results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
  })),
}));
"""
#: True once the browser shows another document than the one ``press`` marked.
NEW_PAGE = "return !window.leftBehind && document.readyState === 'complete'"


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


@pytest.mark.parametrize("variant", variant_params(first_only=True))
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


class Inbox:
    """An aiosmtpd handler that keeps every mail it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def link(self, wait: WebDriverWait, to: str, url: str) -> str:
        """The link to ``url`` (``?token=...``) in a mail to ``to``, once one came."""
        pattern = re.compile(rf"{re.escape(url)}\?token=[A-Za-z0-9_-]+")

        def mailed(_: object) -> str | None:
            for message in list(self.messages):
                body = message.get_body(("plain",))
                found = body and pattern.search(body.get_content())
                if message["To"] == to and found:
                    return found.group()
            return None

        return wait.until(mailed, f"no mail to {to} with a link to {url}")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """An SMTP server on the loopback, and what it receives."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A site of another origin (another port of localhost: the same site, so the
    session cookie goes with its forms, and only the origin check can refuse them):
    the folder it serves and its URL."""
    folder = tmp_path / "other-site"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@functools.cache
def axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


@dataclass
class Pages:
    """The service's pages as one browser sees them; every page shown is checked
    (``check``), and what the checks found is kept in ``findings``."""

    browser: WebDriver
    name: str
    findings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wait = WebDriverWait(self.browser, 10)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.report = ARTIFACTS / f"pages-{self.name}-axe.txt"
        self.report.write_text(f"axe-core on the pages of {self.name}, every violation:\n")

    def open(self, url: str, page: str) -> None:
        self.browser.get(url)
        self.check(page)

    def check(self, page: str, *, dark: bool = False) -> None:
        """axe-core on the page shown (in the dark colour scheme too, with ``dark``);
        its screenshots; on a phone, no scrolling sideways."""
        self.axe(page)
        if dark:
            scheme = {"name": "prefers-color-scheme", "value": "dark"}
            self.browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [scheme]})
            try:
                self.axe(f"{page}-dark")
            finally:
                self.browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        self.browser.set_window_size(*PHONE)
        try:
            scroll, width = self.browser.execute_script(
                "const page = document.documentElement;return [page.scrollWidth, page.clientWidth];"
            )
            self.screenshot(f"{page}-phone")
        finally:
            self.browser.set_window_size(*DESKTOP)
        if scroll > width:
            self.findings.append(
                f"{page}: scrolls sideways on a phone ({scroll} px wide in {width} px)"
            )

    def axe(self, page: str) -> None:
        """axe-core's violations on the page shown: all in the report, the
        BLOCKING ones in ``findings``; and a screenshot."""
        answer = self.browser.execute_script(axe_source() + AXE_RUN)
        self.screenshot(page)
        lines = [f"{page} ({self.browser.current_url}), axe-core {answer['version']}:"]
        for violation in answer["violations"]:
            nodes = violation["nodes"]
            fix = nodes[0]["summary"].splitlines() if nodes else []
            said = (
                f"{violation['impact']} {violation['id']}: {violation['help']} "
                f"({violation['helpUrl']})\n      at "
                + ", ".join(node["target"] for node in nodes)
                + "\n      "
                + " / ".join(line.strip() for line in fix)
            )
            lines.append(f"    {said}")
            if violation["impact"] in BLOCKING:
                self.findings.append(f"{page} ({self.browser.current_url}): {said}")
        with self.report.open("a") as report:
            report.write("\n".join(lines if answer["violations"] else [*lines, "    none"]))
            report.write("\n")

    def screenshot(self, page: str) -> None:
        self.browser.save_screenshot(str(ARTIFACTS / f"pages-{self.name}-{page}.png"))

    def fill(self, **fields: str) -> None:
        """Type into the (empty) fields."""
        for name, value in fields.items():
            self.browser.find_element(By.ID, name).send_keys(value)

    def press(self, button: str, within: WebElement | None = None) -> None:
        """Click the button and wait for the page it leads to (a new document: the
        mark left on this one is gone). Its text, not a hidden part, names it."""
        scope = within or self.browser
        found = scope.find_element(By.XPATH, f'.//button[normalize-space(text())="{button}"]')
        self.browser.execute_script("window.leftBehind = true")
        found.click()
        self.wait.until(lambda browser: browser.execute_script(NEW_PAGE), f"{button}: no new page")

    def find(self, css: str) -> WebElement:
        return self.browser.find_element(By.CSS_SELECTOR, css)

    def texts(self, css: str) -> list[str]:
        return [element.text for element in self.browser.find_elements(By.CSS_SELECTOR, css)]

    def shows(self, heading: str, notice: str | None = None) -> None:
        """The page shown is ``heading``'s, saying ``notice`` (and no error) if given."""
        shown = self.find("h1").text, self.texts(".error-summary li")
        assert shown[0] == heading, f"{self.browser.current_url} shows {shown}"
        if notice is not None:
            assert self.texts(".notice") == [notice]
            assert self.texts(".error-summary") == []

    def status(self) -> int:
        """The HTTP status of the page shown."""
        return self.browser.execute_script(
            "return performance.getEntriesByType('navigation')[0].responseStatus"
        )


HOSTILE_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Another site</title></head>
<body><main>
<form method="post" action="{base}/account/profile">
  <input type="hidden" name="csrf_token" value="{csrf}">
  <input type="hidden" name="full_name" value="Mallory">
  <button type="submit">Claim your prize</button>
</form>
<form method="post" action="{base}/account/sign-out">
  <input type="hidden" name="csrf_token" value="{csrf}">
  <button type="submit">Unsubscribe</button>
</form>
</main></body>
</html>
"""


#: Runs a block of the generated README in the page, given the names it uses.
README_FETCH = """
const done = arguments[arguments.length - 1];
(async () => {{
  const username = {username}, password = {password};
  {snippet}
  return {{me, access_token}};
}})().then(done, error => done({{error: String(error)}}));
"""


def readme_block(readme: Path, language: str) -> str:
    """The first fenced block of ``language`` in a README."""
    found = re.search(rf"```{language}\n(.*?)```", readme.read_text(), re.S)
    assert found, f"no {language} block in {readme}"
    return found[1]


@pytest.mark.parametrize("variant", variant_params(one_per="structure", covering="database"))
def test_pages_from_registration_to_a_sign_in_with_two_steps_in_a_real_browser(
    variant: dict[str, str],
    baked: Baked,
    serve: Callable[..., str],
    browser: WebDriver,
    inbox: Inbox,
    other_site: tuple[Path, str],
) -> None:
    # localhost, as people try a service on their machine; browsers take the
    # production cookie (__Host-, Secure) from it as from https.
    base = serve(
        "pages",
        cheap_hashing=True,
        public_url="http://localhost:{port}",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(inbox.port),
        SMTP_SECURITY="none",
        EMAIL_FROM="Accounts <accounts@example.com>",
    )
    pages = Pages(browser, variant_id(variant))
    wait = pages.wait
    username, email = "pat", "pat@example.com"
    password, changed, chosen = "pat's first password", "pat's second password", "a third one"

    def signed_in_by_api(secret: str) -> dict:
        status, tokens = http(
            "POST", f"{base}/login", json_body={"username": username, "password": secret}
        )
        assert status == 200
        return tokens

    # Register with an email address: a mail comes with a link to the pages.
    browser.get(f"{base}/account/sign-in")
    browser.find_element(By.LINK_TEXT, "Create an account").click()
    wait.until(visible.title_contains("Create an account"))
    pages.check("register")
    pages.fill(username=username, password=password, email=email)
    pages.press("Create the account")
    pages.shows("Sign in", "Your account is ready: sign in.")

    # Opening the link changes nothing; its button verifies the address.
    link = inbox.link(wait, email, f"{base}/account/verify-email")
    pages.open(link, "verify-email")
    unchanged = signed_in_by_api(password)
    me = http("GET", f"{base}/users/me", token=unchanged["access_token"])[1]
    assert me["email"] == email and me["is_verified"] is False
    logout = {"refresh_token": unchanged["refresh_token"]}
    assert call("POST", f"{base}/logout", json_body=logout).status == 204
    pages.press("Verify my address")
    pages.shows("Sign in", "Your email address is verified.")
    pages.check("sign-in")

    # A wrong password: said on the page; the right one opens the account.
    pages.fill(username=username, password="not pat's password")
    pages.press("Sign in")
    pages.shows("Sign in")
    assert browser.title.startswith("Error:") and pages.texts(".error-summary li")
    pages.check("sign-in-failed", dark=True)
    assert pages.find("#username").get_attribute("value") == username
    pages.fill(password=password)
    pages.press("Sign in")
    pages.shows("Your account")
    assert pages.find("main p").text == f"Signed in as {username}."
    assert pages.find("#email").get_attribute("value") == email
    assert pages.find("#email-hint").text == "Verified"
    cookies = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    assert cookies["__Host-session"]["secure"] and cookies["__Host-session"]["httpOnly"]

    # A login elsewhere (the API's): seen on the account page, ended from it.
    elsewhere = signed_in_by_api(password)
    browser.refresh()
    pages.check("account", dark=True)
    logins = browser.find_elements(By.CSS_SELECTOR, ".logins li")
    assert len(logins) == 2
    [other] = [login for login in logins if "(this browser)" not in login.text]
    pages.press("Sign out", within=other)
    pages.shows("Your account", "That login is ended.")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".logins li")) == 1
    refresh = {"refresh_token": elsewhere["refresh_token"]}
    assert http("POST", f"{base}/token/refresh", json_body=refresh)[0] == 401
    assert http("GET", f"{base}/users/me", token=elsewhere["access_token"])[0] == 401

    # A page of another origin posts the account's forms (with the right CSRF
    # token, even): refused, and nothing changes.
    folder, site = other_site
    csrf = pages.find("input[name=csrf_token]").get_attribute("value")
    (folder / "index.html").write_text(HOSTILE_PAGE.format(base=base, csrf=csrf))
    for button, page in (("Claim your prize", "profile"), ("Unsubscribe", "sign-out")):
        browser.get(f"{site}/")
        pages.press(button)
        pages.screenshot(f"refused-{page}")
        assert browser.current_url == f"{base}/account/{page}"
        assert pages.status() == 403, button
        assert "allowed origin" in " ".join(pages.texts(".error-summary li"))
        assert pages.find("#full_name").get_attribute("value") == ""  # not shown back
        browser.get(f"{base}/account")
        pages.shows("Your account")
        assert pages.find("#full_name").get_attribute("value") == ""

    # A new password ends every login, this browser's too.
    before = signed_in_by_api(password)
    pages.fill(**{"password-current": password, "new_password": changed})
    pages.press("Change the password")
    pages.shows("Sign in", "Your password is changed: sign in again everywhere.")
    assert http("GET", f"{base}/users/me", token=before["access_token"])[0] == 401
    browser.get(f"{base}/account")
    pages.shows("Sign in")

    # Forgotten: a mailed link to choose another one, which signs in.
    browser.find_element(By.LINK_TEXT, "Forgot your password?").click()
    wait.until(visible.title_contains("Forgot your password?"))
    pages.check("forgot-password")
    pages.fill(email=email)
    pages.press("Send the link")
    pages.shows(
        "Forgot your password?", "If the address is an account's, a reset link is on its way."
    )
    link = inbox.link(wait, email, f"{base}/account/reset-password")
    pages.open(link, "reset-password")
    pages.fill(new_password=chosen)
    pages.press("Change the password")
    pages.shows("Sign in", "Your password is changed: sign in with the new one.")
    pages.fill(username=username, password=chosen)
    pages.press("Sign in")
    pages.shows("Your account")
    assert pages.find("main p").text == f"Signed in as {username}."
    for old in (password, changed):
        credentials = {"username": username, "password": old}
        assert http("POST", f"{base}/login", json_body=credentials)[0] == 401
    pages.press("Sign out")
    pages.shows("Sign in", "You are signed out.")
    browser.get(f"{base}/account")
    pages.shows("Sign in")
    browser.find_element(By.PARTIAL_LINK_TEXT, "verify your email address").click()
    wait.until(visible.title_contains("Verify your email address"))
    pages.check("verify-email-resend")

    # The generated README's fetch calls, run as written by a page of the service:
    # sign in for the cookie, read, change with the CSRF token, a token for other
    # services, sign out (which ends that token too).
    snippet = readme_block(baked.path / "README.md", "js")
    answer = browser.execute_async_script(
        README_FETCH.format(
            username=json.dumps(username), password=json.dumps(chosen), snippet=snippet
        )
    )
    assert answer.get("error") is None, answer
    assert answer["me"]["username"] == username
    assert http("GET", f"{base}/users/me", token=answer["access_token"])[0] == 401
    after = signed_in_by_api(chosen)["access_token"]
    assert http("GET", f"{base}/users/me", token=after)[1]["full_name"] == "Ada Lovelace"

    two_step_sign_in(pages, base, username, chosen)

    assert not pages.findings, "\n".join(
        [f"The pages of {pages.name} fail these checks:", *pages.findings]
    )


def two_step_sign_in(pages: Pages, base: str, username: str, password: str) -> None:
    """Set up an authenticator app from the account page, as a person does with
    their phone (the key typed in from the page); then sign in with the password
    and a code from the app, and with the password and a recovery code."""
    browser = pages.browser

    def sign_in() -> None:
        browser.get(f"{base}/account/sign-in")
        pages.fill(username=username, password=password)
        pages.press("Sign in")
        pages.shows("Enter the code from your authenticator app")

    def sign_out() -> None:
        pages.press("Sign out", within=pages.find("form[action='/account/sign-out']"))
        pages.shows("Sign in", "You are signed out.")

    # The app's key read from the page, its first code confirmed: the recovery
    # codes, shown once.
    browser.get(f"{base}/account/sign-in")
    pages.fill(username=username, password=password)
    pages.press("Sign in")
    pages.shows("Your account")
    pages.fill(password=password)
    pages.press("Set up an authenticator app")
    pages.shows("Set up an authenticator app")
    pages.check("totp-setup")
    app = pyotp.TOTP("".join(pages.find("#totp-secret").text.split()))
    pages.fill(otp=app.now())
    pages.press("Turn on two-step sign-in")
    pages.shows("Your recovery codes")
    pages.check("recovery-codes")
    codes = pages.texts("#recovery-codes li")
    assert len(codes) == 10
    browser.find_element(By.PARTIAL_LINK_TEXT, "back to your account").click()
    pages.wait.until(visible.title_contains("Your account"))
    pages.shows("Your account", "Two-step sign-in is on: signing in needs a code too.")
    assert pages.find("#recovery-codes-left").text == "Recovery codes left: 10"
    pages.check("account-two-step")
    sign_out()

    # The password, then a wrong code (said on the page), then the app's next one.
    sign_in()
    pages.fill(otp="000000")
    pages.press("Continue")
    pages.shows("Enter the code from your authenticator app")
    assert pages.texts(".error-summary li") == ["Incorrect or already used code"]
    pages.check("sign-in-code-failed", dark=True)
    pages.fill(otp=app.at(time.time() + app.interval))  # a later step than the last
    pages.press("Continue")
    pages.shows("Your account")
    sign_out()

    # The password, then a recovery code instead.
    sign_in()
    browser.find_element(By.TAG_NAME, "summary").click()
    pages.fill(recovery_code=codes[0])
    pages.press("Use the recovery code")
    pages.shows("Your account")
    assert pages.find("#recovery-codes-left").text == "Recovery codes left: 9"
