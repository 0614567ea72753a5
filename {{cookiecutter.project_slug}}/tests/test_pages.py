"""The service's own pages: every form through the app, as a browser without
JavaScript posts it, and the same answers as the API's."""

import html
import logging
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

{{ imports(config="settings", main="create_app", mfa_login="as mfa_login", page_views="CONTENT_SECURITY_POLICY") }}

from .conftest import (
    ORIGIN,
    PASSWORD,
    Clock,
    add_user,
    logged,
    sign_in,
    start_login,
    token_part,
)

PAGES = [
    "/account/sign-in",
    "/account/register",
    "/account/forgot-password",
    "/account/reset-password?token=abc",
    "/account/verify-email?token=abc",
    "/account/verify-email",
]
FROM_HERE = {"Origin": ORIGIN}
NEW_PASSWORD = "a brand new password"


def post(client: TestClient, path: str, form: dict, **headers: str) -> object:
    """A form posted by a page of this service, the redirect not followed."""
    return client.post(
        f"/account{path}",
        data=form,
        headers=FROM_HERE | headers,
        follow_redirects=False,
    )


def sign_in_by_page(client: TestClient, username: str = "alice") -> str:
    """Sign in on the page; the account page's CSRF token."""
    answer = post(client, "/sign-in", {"username": username, "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    return csrf_of(client.get("/account").text)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def mailed_link(caplog: pytest.LogCaptureFixture, path: str) -> str:
    """The link to ``path`` in the last mail the service wrote to its log (no mail
    server in development)."""
    text = logged(caplog, "mail")[-1]["text"]
    url = re.search(rf"{re.escape(ORIGIN)}{path}\?token=\S+", text).group()
    return url.removeprefix(ORIGIN)


@pytest.mark.parametrize("path", [*PAGES, "/account"])
def test_every_page_is_plain_html_under_a_strict_policy(
    client: TestClient, user: dict, path: str
) -> None:
    if path == "/account":
        sign_in(client)
    assert_plain_page(client.get(path))
    stylesheet = client.get("/account/static/style.css")
    assert stylesheet.status_code == 200 and ":focus-visible" in stylesheet.text


def assert_plain_page(answer: object) -> None:
    """A page of the service: HTML under the policy, never cached, every field
    labelled, no script and no inline style."""
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["cache-control"] == "no-store"
    page = answer.text
    assert '<html lang="en">' in page and 'name="viewport"' in page
    assert "<script" not in page and " style=" not in page and "<style" not in page
    for field in re.findall(r'<input id="([^"]+)"', page):
        assert f'<label for="{field}">' in page


def test_signing_in_on_the_page_opens_the_account(
    client: TestClient, user: dict
) -> None:
    assert client.get("/account", follow_redirects=False).headers["location"] == (
        "/account/sign-in"
    )
    sign_in_by_page(client)
    account = client.get("/account").text
    assert "alice" in account and "(this browser)" in account
    assert client.get("/users/me").json()["username"] == "alice"  # the same session


def test_the_pages_say_the_apis_errors(client: TestClient, user: dict) -> None:
    wrong = {"username": "alice", "password": "wrong password"}
    unknown = {"username": "nobody", "password": "wrong password"}
    api = client.post("/login", json=wrong).json()["detail"]
    for form in (wrong, unknown):
        answer = post(client, "/sign-in", form)
        assert answer.status_code == 401
        assert api in answer.text and 'role="alert"' in answer.text
        assert form["password"] not in answer.text  # never sent back
    for _ in range(settings.login_max_failures):
        answer = post(client, "/sign-in", wrong)
    assert answer.status_code == 429 and "Retry-After" in answer.headers
    taken = post(client, "/register", {"username": "alice", "password": PASSWORD})
    assert taken.status_code == 409 and "Username already registered" in taken.text


def test_a_field_at_fault_is_named_next_to_it_and_in_the_summary(
    client: TestClient,
) -> None:
    answer = post(client, "/register", {"username": "al", "password": "short"})
    assert answer.status_code == 422
    html = answer.text
    for field in ("username", "password"):
        assert f'id="{field}-error"' in html
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html)
        assert f'<a href="#{field}">' in html
    assert 'value="al"' in html and "short" not in html  # the password is not kept


def test_registering_on_the_page_then_verifying_the_mailed_link(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    form = {"username": "carol", "password": PASSWORD, "email": "carol@example.com"}
    with caplog.at_level(logging.INFO):
        answer = post(client, "/register", form)
    assert answer.headers["location"] == "/account/sign-in?done=registered"
    link = mailed_link(caplog, "/account/verify-email")
    # Opening the link changes nothing (mail scanners open links): a button does.
    page = client.get(link)
    assert page.status_code == 200 and "Verify my address" in page.text
    token = link.partition("token=")[2]
    sign_in_by_page(client, "carol")
    assert client.get("/users/me").json()["is_verified"] is False
    verified = post(client, "/verify-email", {"token": token})
    assert verified.headers["location"] == "/account?done=email-verified"
    assert client.get("/users/me").json()["is_verified"] is True
    again = post(client, "/verify-email", {"token": token})
    assert again.status_code == 400 and "Invalid or expired token" in again.text


def test_a_user_who_must_verify_first_asks_the_pages_for_a_new_link(
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    form = {"username": "erin", "password": PASSWORD, "email": "erin@example.com"}
    post(client, "/register", form)
    monkeypatch.setattr(settings, "require_verified_email", True)
    credentials = {"username": "erin", "password": PASSWORD}
    refused = post(client, "/sign-in", credentials)
    api = client.post("/login", json=credentials).json()["detail"]
    assert refused.status_code == 403 and api in refused.text
    assert 'href="/account/verify-email"' in client.get("/account/sign-in").text
    with caplog.at_level(logging.INFO):
        asked = post(client, "/verify-email/resend", {"email": "erin@example.com"})
        unknown = post(client, "/verify-email/resend", {"email": "no@example.com"})
    assert asked.headers["location"] == unknown.headers["location"]
    assert asked.headers["location"] == "/account/verify-email?done=verification-asked"
    token = mailed_link(caplog, "/account/verify-email").partition("token=")[2]
    post(client, "/verify-email", {"token": token})
    assert post(client, "/sign-in", credentials).status_code == 303


def test_a_forgotten_password_is_reset_through_the_pages(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    add_user("dave")
    client.patch(
        "/users/me",
        json={"email": "dave@example.com", "current_password": PASSWORD},
        headers=sign_in(client, "dave"),
    )
    client.cookies.clear()
    with caplog.at_level(logging.INFO):
        asked = post(client, "/forgot-password", {"email": "dave@example.com"})
        unknown = post(client, "/forgot-password", {"email": "nobody@example.com"})
    assert asked.headers["location"] == unknown.headers["location"]
    link = mailed_link(caplog, "/account/reset-password")
    page = client.get(link).text
    token = link.partition("token=")[2]
    assert f'name="token" value="{token}"' in page
    done = post(
        client, "/reset-password", {"token": token, "new_password": NEW_PASSWORD}
    )
    assert done.headers["location"] == "/account/sign-in?done=password-reset"
    assert "sign in with the new one" in client.get(done.headers["location"]).text
    signed_in = post(client, "/sign-in", {"username": "dave", "password": NEW_PASSWORD})
    assert signed_in.status_code == 303


def test_account_forms_need_the_csrf_token_and_this_site(
    client: TestClient, user: dict
) -> None:
    add_user("bob")
    bobs = sign_in_by_page(client, "bob")  # another session's token
    client.cookies.clear()
    token = sign_in_by_page(client)
    refused = [
        ({"full_name": "Mallory"}, FROM_HERE),
        # A page without a referrer policy that allows it sends "Origin: null".
        ({"full_name": "Mallory", "csrf_token": token}, {"Origin": "null"}),
        ({"full_name": "Mallory", "csrf_token": bobs}, FROM_HERE),
        (
            {"full_name": "Mallory", "csrf_token": token},
            {"Origin": "https://evil.example"},
        ),
    ]
    for form, headers in refused:
        answer = client.post(
            "/account/profile", data=form, headers=headers, follow_redirects=False
        )
        assert answer.status_code == 403
        assert "Mallory" not in answer.text  # a forged form is not shown back
    assert client.get("/users/me").json()["full_name"] is None
    # Signed out, a page of another site cannot sign anyone in either.
    client.cookies.clear()
    foreign = client.post(
        "/account/sign-in",
        data={"username": "alice", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403 and settings.session_cookie not in client.cookies


@pytest.mark.parametrize(
    "path",
    [
        "/sign-in",
        "/register",
        "/forgot-password",
        "/reset-password",
        "/verify-email",
        "/verify-email/resend",
    ],
)
def test_every_signed_out_form_is_refused_from_another_site(
    client: TestClient, path: str
) -> None:
    form = {"username": "mallory", "password": PASSWORD, "email": "m@example.com"}
    answer = post(client, path, form, Origin="https://evil.example")
    assert answer.status_code == 403
    assert "allowed origin" in answer.text and "mallory" not in answer.text
    assert client.post("/login", json=form).status_code == 401  # nobody registered


def test_the_account_page_changes_the_profile_and_the_password(
    client: TestClient, user: dict
) -> None:
    token = sign_in_by_page(client)
    saved = post(
        client, "/profile", {"full_name": "Alice A.", "email": "", "csrf_token": token}
    )
    assert saved.headers["location"] == "/account?done=profile-saved"
    assert client.get("/users/me").json()["full_name"] == "Alice A."
    # A new address needs the current password, as through the API.
    form = {"full_name": "Alice A.", "email": "alice@example.com", "csrf_token": token}
    refused = post(client, "/profile", form | {"current_password": "wrong password"})
    assert (
        refused.status_code == 400 and "Current password is incorrect" in refused.text
    )
    moved = post(client, "/profile", form | {"current_password": PASSWORD})
    assert moved.status_code == 303
    assert client.get("/users/me").json()["email"] == "alice@example.com"
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    changed = post(client, "/password", change | {"csrf_token": token})
    assert changed.headers["location"] == "/account/sign-in?done=password-changed"
    assert client.get("/users/me").status_code == 401  # every login ended


def test_the_account_page_ends_another_login_or_all_others_and_signs_out(
    client: TestClient, user: dict
) -> None:
    phone, laptop = start_login(user), start_login(user)
    token = sign_in_by_page(client)
    page = client.get("/account").text
    others = re.findall(r'action="/account/sessions/([0-9a-f]{32})/end"', page)
    assert len(others) == 2
    ended = post(client, f"/sessions/{others[0]}/end", {"csrf_token": token})
    assert ended.headers["location"] == "/account?done=login-ended"
    assert len(client.get("/users/me/sessions").json()) == 2
    post(client, "/sessions/end-others", {"csrf_token": token})
    statuses = [
        client.get(
            "/protected", headers={"Authorization": f"Bearer {t['access_token']}"}
        ).status_code
        for t in (phone, laptop)
    ]
    assert statuses == [401, 401]
    out = post(client, "/sign-out", {"csrf_token": token})
    assert out.headers["location"] == "/account/sign-in?done=signed-out"
    assert client.get("/users/me").status_code == 401


def test_pages_can_be_turned_off_for_an_api_only_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "pages_enabled", False)
    api_only = TestClient(create_app())
    assert api_only.get("/account/sign-in").status_code == 404
    assert api_only.get("/account/static/style.css").status_code == 404
    assert api_only.post("/session", json={}).status_code == 422  # still there


def set_up_app(client: TestClient, token: str, clock: Clock) -> tuple[str, list[str]]:
    """Add an authenticator app on the account page, as its user does (the key
    read from the page, the code computed from it): the key and the recovery codes
    shown. The clock moves on a step, so the confirming code is spent."""
    started = post(client, "/mfa/totp", {"password": PASSWORD, "csrf_token": token})
    assert_plain_page(started)
    assert "<svg" in started.text and 'href="otpauth://totp/' in started.text
    secret = "".join(text_of(started.text, "totp-secret").split())
    confirmed = post(
        client, "/mfa/totp/confirm", {"otp": clock.code(secret), "csrf_token": token}
    )
    assert_plain_page(confirmed)
    clock.tick()
    return secret, re.findall(r"<li><code>([^<]+)</code></li>", confirmed.text)


def text_of(page: str, element_id: str) -> str:
    """The text of the page's element with that id (which holds no other element)."""
    return html.unescape(re.search(rf'id="{element_id}">([^<]*)<', page).group(1))


def ticket_of(page: str) -> str:
    return re.search(r'name="mfa_token" value="([^"]+)"', page).group(1)


def code_page(client: TestClient, username: str = "alice") -> str:
    """Sign in with the password on the page: the code page's sign-in ticket."""
    answer = post(client, "/sign-in", {"username": username, "password": PASSWORD})
    assert_plain_page(answer)
    assert "Enter the code from your authenticator app" in answer.text
    # Phones offer the code the app just showed, on a keypad of digits.
    assert 'autocomplete="one-time-code" inputmode="numeric"' in answer.text
    assert settings.session_cookie not in client.cookies
    return ticket_of(answer.text)


def test_an_app_set_up_on_the_account_page_asks_for_its_code_at_sign_in(
    client: TestClient, user: dict, clock: Clock
) -> None:
    token = sign_in_by_page(client)
    secret, codes = set_up_app(client, token, clock)
    assert len(codes) == len(set(codes)) == 10
    account = client.get("/account?done=second-factor-on").text
    assert "Two-step sign-in is on" in account
    assert "Recovery codes left: 10" in account
    post(client, "/sign-out", {"csrf_token": token})

    code = {"mfa_token": code_page(client), "otp": clock.code(secret)}
    done = post(client, "/sign-in/code", code)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert settings.session_cookie in client.cookies
    csrf = {"X-CSRF-Token": csrf_of(client.get("/account").text), "Origin": ORIGIN}
    access_token = client.post("/session/token", headers=csrf).json()["access_token"]
    assert token_part(access_token, 1)["amr"] == ["pwd", "otp", "mfa"]


def test_a_wrong_code_at_set_up_asks_again_without_showing_the_key_twice(
    client: TestClient, user: dict, clock: Clock
) -> None:
    token = sign_in_by_page(client)
    started = post(client, "/mfa/totp", {"password": PASSWORD, "csrf_token": token})
    secret = "".join(text_of(started.text, "totp-secret").split())
    wrong = post(client, "/mfa/totp/confirm", {"otp": "000000", "csrf_token": token})
    assert wrong.status_code == 400
    assert "Code is incorrect or was used already" in wrong.text
    assert 'id="totp-secret"' not in wrong.text and "<svg" not in wrong.text
    right = {"otp": clock.code(secret), "csrf_token": token}
    assert "Your recovery codes" in post(client, "/mfa/totp/confirm", right).text


def test_a_recovery_code_signs_in_once_in_place_of_a_code(
    client: TestClient, user: dict, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    token = sign_in_by_page(client)
    address = {"email": "alice@example.com", "current_password": PASSWORD}
    post(client, "/profile", address | {"full_name": "", "csrf_token": token})
    _, codes = set_up_app(client, token, clock)
    client.cookies.clear()
    used = {"mfa_token": code_page(client), "recovery_code": codes[0].upper()}
    with caplog.at_level(logging.INFO):
        assert post(client, "/sign-in/code", used).headers["location"] == "/account"
    told = logged(caplog, "mail")[-1]
    assert told["subject"] == "A recovery code was used to sign in"
    assert "Recovery codes left: 9" in client.get("/account").text
    client.cookies.clear()
    again = post(client, "/sign-in/code", used | {"mfa_token": code_page(client)})
    assert again.status_code == 401
    assert "Incorrect or already used code" in again.text
    assert codes[0] not in again.text and codes[0].upper() not in again.text


def test_a_wrong_code_is_said_on_the_code_page_which_keeps_the_ticket(
    client: TestClient, user: dict, clock: Clock
) -> None:
    token = sign_in_by_page(client)
    secret, _ = set_up_app(client, token, clock)
    client.cookies.clear()
    mfa_token = code_page(client)
    wrong = post(client, "/sign-in/code", {"mfa_token": mfa_token, "otp": "000000"})
    assert wrong.status_code == 401
    api = "Incorrect or already used code"
    assert api in wrong.text and 'role="alert"' in wrong.text
    assert ticket_of(wrong.text) == mfa_token and "000000" not in wrong.text
    right = {"mfa_token": mfa_token, "otp": clock.code(secret)}
    assert post(client, "/sign-in/code", right).headers["location"] == "/account"

    # A ticket dies after three wrong codes: the page leads back to the password.
    client.cookies.clear()
    mfa_token = code_page(client)
    for _ in range(3):
        post(client, "/sign-in/code", {"mfa_token": mfa_token, "otp": "000000"})
    right = {"mfa_token": mfa_token, "otp": clock.code(secret)}
    dead = post(client, "/sign-in/code", right)
    assert dead.status_code == 401 and "Invalid or expired mfa_token" in dead.text
    assert 'href="/account/sign-in"' in dead.text
    assert settings.session_cookie not in client.cookies


def test_with_the_app_on_every_change_that_needs_a_code_takes_it_from_its_form(
    client: TestClient, user: dict, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = start_login(user)
    token = sign_in_by_page(client)
    secret, _ = set_up_app(client, token, clock)
    account = client.get("/account").text
    for form in ("profile", "password", "others", "codes", "disable"):
        assert f'id="{form}-otp" name="otp"' in account
    # Each change comes after the minutes that the code before covers: each form
    # must send its own.
    monkeypatch.setattr(mfa_login, "utcnow", clock)
    later = mfa_login.STEP_UP_WINDOW // timedelta(seconds=30) + 1
    needs_code = "This change needs a current code from your authenticator app"
    email = {"full_name": "", "email": "alice@example.com"}
    email["current_password"] = PASSWORD
    password = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    changes = [
        ("/profile", email, "/account?done=profile-saved"),
        ("/sessions/end-others", {}, "/account?done=others-ended"),
        ("/mfa/recovery-codes", {}, None),
        ("/password", password, "/account/sign-in?done=password-changed"),
    ]
    for path, form, location in changes:
        form |= {"csrf_token": token}
        refused = post(client, path, form | {"otp": ""})
        assert refused.status_code == 403 and needs_code in refused.text, path
        done = post(client, path, form | {"otp": clock.code(secret)})
        clock.tick(later)
        if location:
            assert done.headers["location"] == location, path
        else:
            assert_plain_page(done)
            assert "Your recovery codes" in done.text
    signed_in = client.post(
        "/login", json={"username": "alice", "password": NEW_PASSWORD}
    )
    assert signed_in.json()["error"] == "mfa_required"  # the new password, and a code
    headers = {"Authorization": f"Bearer {phone['access_token']}"}
    assert client.get("/users/me", headers=headers).status_code == 401


def test_new_recovery_codes_on_the_account_page_void_the_old_ones(
    client: TestClient, user: dict, clock: Clock
) -> None:
    token = sign_in_by_page(client)
    secret, old = set_up_app(client, token, clock)
    made = post(
        client, "/mfa/recovery-codes", {"otp": clock.code(secret), "csrf_token": token}
    )
    new = re.findall(r"<li><code>([^<]+)</code></li>", made.text)
    assert len(new) == 10 and not set(new) & set(old)
    assert 'href="/account?done=recovery-codes-made"' in made.text
    client.cookies.clear()
    stale = {"mfa_token": code_page(client), "recovery_code": old[1]}
    assert post(client, "/sign-in/code", stale).status_code == 401
    fresh = stale | {"recovery_code": new[1]}
    assert post(client, "/sign-in/code", fresh).headers["location"] == "/account"


def test_turning_the_app_off_needs_the_password_and_a_code(
    client: TestClient, user: dict, clock: Clock
) -> None:
    token = sign_in_by_page(client)
    secret, _ = set_up_app(client, token, clock)
    off = {"password": PASSWORD, "csrf_token": token}
    refused = post(client, "/mfa/totp/disable", off | {"otp": ""})
    assert refused.status_code == 403
    wrong = post(
        client,
        "/mfa/totp/disable",
        off | {"password": "wrong password", "otp": clock.code(secret)},
    )
    assert wrong.status_code == 400 and "Current password is incorrect" in wrong.text
    clock.tick()
    done = post(client, "/mfa/totp/disable", off | {"otp": clock.code(secret)})
    assert done.headers["location"] == "/account?done=second-factor-off"
    account = client.get(done.headers["location"]).text
    assert "Two-step sign-in is off" in account and 'name="otp"' not in account
    assert "Set up an authenticator app" in account
    client.cookies.clear()
    sign_in_by_page(client)  # the password alone again


def test_a_superuser_without_a_sign_in_with_a_code_is_asked_to_set_up_an_app(
    client: TestClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "require_mfa_for_superusers", True)
    add_user("root", superuser=True)
    token = sign_in_by_page(client, "root")
    asked = "Your superuser powers need a sign-in with a code"
    assert asked in client.get("/account").text
    secret, _ = set_up_app(client, token, clock)
    assert asked in client.get("/account").text  # until signed in with it
    client.cookies.clear()
    code = {"mfa_token": code_page(client, "root"), "otp": clock.code(secret)}
    post(client, "/sign-in/code", code)
    assert asked not in client.get("/account").text
    assert client.get("/users/").status_code == 200
