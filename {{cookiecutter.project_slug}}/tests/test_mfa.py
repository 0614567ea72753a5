"""A second factor: an authenticator app's codes (TOTP) and recovery codes, from
enrolment to sign-in, step-up and the mails that tell the user. Codes are computed
with pyotp at a clock the tests control."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update

{{ imports(auth_models="AuthSession, MailRequest, MfaTicket", auth_service="purge", config="settings", database="SessionLocal", email_links="deliver_mails", mfa_models="RecoveryCode, TotpFactor", user_models="User") }}

from .conftest import (
    ORIGIN,
    PASSWORD,
    Clock,
    add_user,
    bearer,
    logged,
    me_status,
    start_login,
    token_part,
)

OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp"
RECOVERY_CODE_GRANT = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
NEW_PASSWORD = "a brand new passphrase"


def enrol(client: TestClient, token: str, clock: Clock) -> tuple[str, list[str]]:
    """Turn on an authenticator app for the token's user: its secret and the
    recovery codes. The clock moves on a step, so the confirming code is spent."""
    started = client.post(
        "/users/me/mfa/totp", json={"password": PASSWORD}, headers=bearer(token)
    )
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    confirmed = client.post(
        "/users/me/mfa/totp/confirm",
        json={"otp": clock.code(secret)},
        headers=bearer(token),
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.tick()
    return secret, confirmed.json()["recovery_codes"]


@pytest.fixture
def secured(
    client: TestClient, user: dict, token: str, clock: Clock
) -> tuple[str, list[str]]:
    """Alice, with an authenticator app: its secret and her recovery codes."""
    return enrol(client, token, clock)


def ticket(client: TestClient, username: str = "alice") -> str:
    """The mfa_token of a sign-in with the right password (POST /login)."""
    response = client.post("/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 403, response.text
    return response.json()["mfa_token"]


def with_code(client: TestClient, mfa_token: str, **proof: str) -> dict:
    response = client.post("/login/mfa", json={"mfa_token": mfa_token, **proof})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_app_is_added_with_the_password_and_on_once_a_code_confirms_it(
    client: TestClient, user: dict, token: str, clock: Clock
) -> None:
    wrong = client.post(
        "/users/me/mfa/totp", json={"password": "not it"}, headers=bearer(token)
    )
    assert wrong.status_code == 400
    started = client.post(
        "/users/me/mfa/totp", json={"password": PASSWORD}, headers=bearer(token)
    ).json()
    assert started["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={started['secret']}" in started["otpauth_uri"]
    assert started["qr_svg"].startswith("<svg") and "<script" not in started["qr_svg"]
    state = client.get("/users/me/mfa", headers=bearer(token)).json()
    assert state == {"totp_enabled": False, "recovery_codes_left": 0}

    refused = client.post(
        "/users/me/mfa/totp/confirm",
        json={"otp": clock.code(started["secret"], steps=3)},
        headers=bearer(token),
    )
    assert refused.status_code == 400
    confirmed = client.post(
        "/users/me/mfa/totp/confirm",
        json={"otp": clock.code(started["secret"])},
        headers=bearer(token),
    )
    assert confirmed.status_code == 200
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    state = client.get("/users/me/mfa", headers=bearer(token)).json()
    assert state == {"totp_enabled": True, "recovery_codes_left": 10}
    again = client.post(
        "/users/me/mfa/totp", json={"password": PASSWORD}, headers=bearer(token)
    )
    assert again.status_code == 409


def test_the_secret_and_codes_are_stored_encrypted_or_hashed_and_never_logged(
    client: TestClient,
    secured: tuple[str, list[str]],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret, codes = secured
    mfa_token = ticket(client)
    with_code(client, mfa_token, otp=clock.code(secret))
    with SessionLocal() as session:
        stored = session.scalar(select(TotpFactor.encrypted_secret))
        hashes = set(session.scalars(select(RecoveryCode.code_hash)))
    assert secret.encode() not in stored
    assert not {code.replace("-", "") for code in codes} & hashes
    assert len(hashes) == 10
    logs = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret_text in (secret, mfa_token, *codes):
        assert secret_text not in logs


@pytest.mark.parametrize("route", ["/login", "/token", "/session"])
def test_a_right_password_gives_a_ticket_and_no_tokens(
    client: TestClient, secured: tuple[str, list[str]], route: str
) -> None:
    credentials = {"username": "alice", "password": PASSWORD}
    if route == "/token":
        response = client.post(route, data=credentials)
    else:
        response = client.post(route, json=credentials, headers={"Origin": ORIGIN})
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "mfa_required"
    assert len(body["mfa_token"]) >= 32
    assert "access_token" not in body and "csrf_token" not in body
    assert "set-cookie" not in response.headers


def test_a_wrong_password_says_nothing_of_a_second_factor(
    client: TestClient, secured: tuple[str, list[str]]
) -> None:
    response = client.post("/login", json={"username": "alice", "password": "wrong"})
    assert response.status_code == 401
    assert "mfa_token" not in response.text


def test_a_code_completes_the_sign_in_and_tokens_say_how(
    client: TestClient, user: dict, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    tokens = with_code(client, ticket(client), otp=clock.code(secret))
    assert token_part(tokens["access_token"], 1)["amr"] == ["pwd", "otp", "mfa"]
    assert me_status(client, tokens["access_token"]) == 200
    refreshed = client.post(
        "/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    ).json()
    assert token_part(refreshed["access_token"], 1)["amr"] == ["pwd", "otp", "mfa"]


def test_a_password_sign_in_says_pwd(client: TestClient, user: dict) -> None:
    response = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert token_part(response.json()["access_token"], 1)["amr"] == ["pwd"]


def test_the_otp_grants_of_the_token_endpoint_complete_a_sign_in(
    client: TestClient, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, codes = secured
    grants = [
        {"grant_type": OTP_GRANT, "otp": clock.code(secret)},
        {"grant_type": RECOVERY_CODE_GRANT, "recovery_code": codes[0]},
    ]
    for grant in grants:
        response = client.post("/token", data={"mfa_token": ticket(client), **grant})
        assert response.status_code == 200, response.text
        assert token_part(response.json()["access_token"], 1)["amr"][-1] == "mfa"
    missing = client.post("/token", data={"grant_type": OTP_GRANT, "otp": "123456"})
    assert missing.status_code == 422


def test_a_code_is_accepted_once_and_never_an_earlier_one(
    client: TestClient, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    code = clock.code(secret)
    with_code(client, ticket(client), otp=code)
    replay = client.post("/login/mfa", json={"mfa_token": ticket(client), "otp": code})
    assert replay.status_code == 401
    clock.tick()
    with_code(client, ticket(client), otp=clock.code(secret))
    earlier = client.post("/login/mfa", json={"mfa_token": ticket(client), "otp": code})
    assert earlier.status_code == 401  # of an earlier step, though within drift


@pytest.mark.parametrize(
    ("steps", "accepted"), [(-1, True), (1, True), (-2, False), (2, False)]
)
def test_one_time_step_of_drift_either_way_is_accepted(
    client: TestClient,
    secured: tuple[str, list[str]],
    clock: Clock,
    steps: int,
    accepted: bool,
) -> None:
    secret, _ = secured
    clock.tick(2)  # past the confirming code's step, whatever the drift
    response = client.post(
        "/login/mfa",
        json={"mfa_token": ticket(client), "otp": clock.code(secret, steps)},
    )
    assert (response.status_code == 200) is accepted


def test_a_recovery_code_works_once_and_the_user_is_told(
    client: TestClient,
    user: dict,
    secured: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, codes = secured
    set_email("alice@example.com")
    tokens = with_code(client, ticket(client), recovery_code=codes[3].upper())
    again = client.post(
        "/login/mfa", json={"mfa_token": ticket(client), "recovery_code": codes[3]}
    )
    assert again.status_code == 401
    state = client.get("/users/me/mfa", headers=bearer(tokens["access_token"])).json()
    assert state["recovery_codes_left"] == 9
    assert mailed(caplog) == ["recovery_code_used"]


def test_a_ticket_works_once_for_its_kind_of_login_and_expires(
    client: TestClient, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    mfa_token = ticket(client)
    with_code(client, mfa_token, otp=clock.code(secret))
    clock.tick()
    reused = client.post(
        "/login/mfa", json={"mfa_token": mfa_token, "otp": clock.code(secret)}
    )
    assert reused.status_code == 401

    browser = client.post(
        "/session",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": ORIGIN},
    ).json()["mfa_token"]
    other_kind = client.post(
        "/login/mfa", json={"mfa_token": browser, "otp": clock.code(secret)}
    )
    assert other_kind.status_code == 401

    late = ticket(client)
    with SessionLocal.begin() as session:
        session.execute(
            update(MfaTicket).values(expires_at=datetime.now(UTC) - timedelta(1))
        )
    expired = client.post(
        "/login/mfa", json={"mfa_token": late, "otp": clock.code(secret)}
    )
    assert expired.status_code == 401


def test_a_ticket_dies_after_three_wrong_codes_and_the_user_is_told(
    client: TestClient, user: dict, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    set_email("alice@example.com")
    mfa_token = ticket(client)
    wrong = clock.code(secret, steps=5)
    answers = [
        client.post("/login/mfa", json={"mfa_token": mfa_token, "otp": wrong})
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert answers[0].json()["detail"] == "Incorrect or already used code"
    right = client.post(
        "/login/mfa", json={"mfa_token": mfa_token, "otp": clock.code(secret)}
    )
    assert right.json()["detail"] == "Invalid or expired mfa_token"
    # Sent by the delivery every worker runs (the failed request sends nothing).
    assert queued_mails() == ["wrong_codes"]
    assert deliver_mails() == 1


def test_wrong_codes_are_throttled_like_passwords(
    client: TestClient,
    secured: tuple[str, list[str]],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret, _ = secured
    monkeypatch.setattr(settings, "login_max_failures", 4)
    wrong = clock.code(secret, steps=5)
    statuses = []
    for _ in range(2):
        mfa_token = ticket(client)
        for _ in range(2):
            response = client.post(
                "/login/mfa", json={"mfa_token": mfa_token, "otp": wrong}
            )
            statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401]
    # The account is throttled at this address, for passwords and codes alike.
    password = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert password.status_code == 429


def test_a_right_code_clears_the_failures_of_the_account(
    client: TestClient,
    secured: tuple[str, list[str]],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret, _ = secured
    monkeypatch.setattr(settings, "login_max_failures", 3)
    mfa_token = ticket(client)
    for _ in range(2):
        client.post("/login/mfa", json={"mfa_token": mfa_token, "otp": "000000"})
    with_code(client, mfa_token, otp=clock.code(secret))
    for _ in range(2):
        ticket(client)  # no failure left on record: passwords are not throttled


def test_a_sign_in_with_a_code_starts_a_browser_session(
    client: TestClient, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    started = client.post(
        "/session",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": ORIGIN},
    ).json()
    body = {"mfa_token": started["mfa_token"], "otp": clock.code(secret)}
    foreign = client.post(
        "/session/mfa", json=body, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    response = client.post("/session/mfa", json=body, headers={"Origin": ORIGIN})
    assert response.status_code == 200, response.text
    assert client.get("/users/me").status_code == 200
    token = client.post(
        "/session/token",
        headers={"X-CSRF-Token": response.json()["csrf_token"], "Origin": ORIGIN},
    ).json()["access_token"]
    assert token_part(token, 1)["amr"] == ["pwd", "otp", "mfa"]


def test_sensitive_changes_need_a_current_code_or_a_recent_sign_in_with_one(
    client: TestClient, user: dict, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    old = start_login(user)  # signed in with the password alone, long ago
    headers = bearer(old["access_token"])
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    email = {"email": "alice@example.com", "current_password": PASSWORD}
    needing_a_code = [
        ("POST", "/users/me/password", change),
        ("PATCH", "/users/me", email),
        ("DELETE", "/users/me/sessions", None),
        ("POST", "/users/me/mfa/recovery-codes", {}),
        ("POST", "/users/me/mfa/totp/disable", {"password": PASSWORD}),
    ]
    for method, path, body in needing_a_code:
        asked = client.request(method, path, json=body, headers=headers)
        assert asked.status_code == 403, path
        assert "code" in asked.json()["detail"]
    wrong = client.post(
        "/users/me/password", json=change | {"otp": "000000"}, headers=headers
    )
    assert wrong.status_code == 400

    # A code proves it for this login, for a few minutes...
    verified = client.post(
        "/users/me/mfa/verify", json={"otp": clock.code(secret)}, headers=headers
    )
    assert verified.status_code == 204
    assert client.patch("/users/me", json=email, headers=headers).status_code == 200
    assert client.delete("/users/me/sessions", headers=headers).status_code == 204
    # ...and a sign-in with a code is such a proof.
    clock.tick()
    fresh = bearer(
        with_code(client, ticket(client), otp=clock.code(secret))["access_token"]
    )
    changed = client.post("/users/me/password", json=change, headers=fresh)
    assert changed.status_code == 204


def test_a_proof_of_the_second_factor_lasts_a_few_minutes(
    client: TestClient, user: dict, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    tokens = with_code(client, ticket(client), otp=clock.code(secret))
    with SessionLocal.begin() as session:
        session.execute(
            update(AuthSession).values(
                second_factor_at=datetime.now(UTC) - timedelta(minutes=6)
            )
        )
    response = client.delete(
        "/users/me/sessions", headers=bearer(tokens["access_token"])
    )
    assert response.status_code == 403


def test_new_recovery_codes_void_the_old_ones(
    client: TestClient, user: dict, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, old_codes = secured
    headers = bearer(start_login(user)["access_token"])
    response = client.post(
        "/users/me/mfa/recovery-codes",
        json={"otp": clock.code(secret)},
        headers=headers,
    )
    new_codes = response.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    refused = client.post(
        "/login/mfa", json={"mfa_token": ticket(client), "recovery_code": old_codes[0]}
    )
    assert refused.status_code == 401
    with_code(client, ticket(client), recovery_code=new_codes[0])


def test_removing_the_app_needs_the_password_and_a_code(
    client: TestClient, user: dict, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    headers = bearer(start_login(user)["access_token"])
    code = clock.code(secret)
    wrong_password = client.post(
        "/users/me/mfa/totp/disable",
        json={"password": "not it", "otp": code},
        headers=headers,
    )
    assert wrong_password.status_code == 400
    removed = client.post(
        "/users/me/mfa/totp/disable", json={"password": PASSWORD}, headers=headers
    )  # the code above proved the second factor for this login
    assert removed.status_code == 204
    state = client.get("/users/me/mfa", headers=headers).json()
    assert state == {"totp_enabled": False, "recovery_codes_left": 0}
    response = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200


def test_every_change_of_a_factor_is_mailed_and_logged(
    client: TestClient,
    user: dict,
    token: str,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_email("alice@example.com")
    secret, _ = enrol(client, token, clock)
    headers = bearer(token)
    client.post(
        "/users/me/mfa/recovery-codes",
        json={"otp": clock.code(secret)},
        headers=headers,
    )
    client.post(
        "/users/me/mfa/totp/disable", json={"password": PASSWORD}, headers=headers
    )
    assert mailed(caplog) == ["mfa_enabled", "recovery_codes_made", "mfa_disabled"]
    for event in (
        "second_factor_added",
        "recovery_codes_made",
        "second_factor_removed",
    ):
        assert logged(caplog, event), event


def test_superusers_need_a_sign_in_with_a_second_factor_when_required(
    client: TestClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "require_mfa_for_superusers", True)
    admin = add_user("root", superuser=True)
    headers = bearer(start_login(admin)["access_token"])
    refused = client.get("/users/", headers=headers)
    assert refused.status_code == 403
    assert "authenticator app" in refused.json()["detail"]
    assert client.get("/users/me", headers=headers).status_code == 200  # may enrol

    secret, _ = enrol(client, start_login(admin)["access_token"], clock)
    tokens = with_code(client, ticket(client, "root"), otp=clock.code(secret))
    two_factors = bearer(tokens["access_token"])
    assert client.get("/users/", headers=two_factors).status_code == 200
    monkeypatch.setattr(settings, "require_mfa_for_superusers", False)
    assert client.get("/users/", headers=headers).status_code == 200


def test_a_superuser_removes_the_app_of_a_user_who_lost_it(
    client: TestClient,
    user: dict,
    secured: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_email("alice@example.com")
    path = f"/users/{user['id']}/mfa"
    alice = bearer(start_login(user)["access_token"])
    assert client.delete(path, headers=alice).status_code == 403
    admin = bearer(start_login(add_user("root", superuser=True))["access_token"])
    assert client.delete(path, headers=admin).status_code == 204
    assert client.delete("/users/999/mfa", headers=admin).status_code == 404
    response = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert mailed(caplog) == ["mfa_disabled"]


def test_a_purge_deletes_tickets_used_or_expired(
    client: TestClient, secured: tuple[str, list[str]], clock: Clock
) -> None:
    secret, _ = secured
    with_code(client, ticket(client), otp=clock.code(secret))  # used
    ticket(client)  # to expire
    with SessionLocal.begin() as session:
        session.execute(
            update(MfaTicket)
            .where(MfaTicket.used_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    waiting = ticket(client)
    purge()
    with SessionLocal() as session:
        assert session.scalar(select(func.count()).select_from(MfaTicket)) == 1
    with_code(client, waiting, recovery_code=secured[1][0])  # the one kept


def test_codes_sealed_with_another_secret_key_match_nothing_and_the_log_says_why(
    client: TestClient,
    secured: tuple[str, list[str]],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret, codes = secured
    monkeypatch.setattr(
        settings, "secret_key", SecretStr("another-" + "k" * 8 + secret)
    )
    for proof in ({"otp": clock.code(secret)}, {"recovery_code": codes[0]}):
        response = client.post(
            "/login/mfa", json={"mfa_token": ticket(client), **proof}
        )
        assert response.status_code == 401
    assert logged(caplog, "second_factor_unreadable")


def set_email(address: str, username: str = "alice") -> None:
    with SessionLocal.begin() as session:
        session.execute(
            update(User).where(User.username == username).values(email=address)
        )


def mailed(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the mails sent were about, in order."""
    return [fields["purpose"] for fields in logged(caplog, "mail_sent")]


def queued_mails() -> list[str]:
    with SessionLocal() as session:
        return list(
            session.scalars(select(MailRequest.purpose).order_by(MailRequest.id))
        )
