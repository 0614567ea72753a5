"""Links mailed to users, through HTTP, with a real SMTP server in this process
(aiosmtpd): password reset and email verification, the tokens' rules, throttling,
and a mail server that is down or refuses."""

import logging
import re
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from ipaddress import ip_address

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select, update

{{ imports(auth_models="MailRequest, OneTimeToken", config="settings", database="SessionLocal", mail="", email_links="MAX_ATTEMPTS, deliver_mails, request_verification", main="app", user_models="User") }}

from .conftest import PASSWORD, bearer, logged, login_statuses, start_login

RESET_URL = "https://app.example/reset?token={token}"
VERIFY_URL = "https://app.example/verify?token={token}"
LINK = re.compile(r"https://app\.example/(?:reset|verify)\?token=([A-Za-z0-9_-]+)")
NEW_PASSWORD = "a brand new passphrase"


class Inbox:
    """An aiosmtpd handler that keeps what it accepts; addresses starting with
    "refused" get a permanent 550."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(handler: Inbox, **options: object) -> Controller:
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        server_hostname="mail.test",
        **options,
    )
    controller.start()
    return controller


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = start(inbox, enable_SMTPUTF8=True)  # addresses in any script
    yield controller, inbox
    controller.stop()


@pytest.fixture
def inbox(
    smtp_server: tuple[Controller, Inbox], monkeypatch: pytest.MonkeyPatch
) -> Inbox:
    """The SMTP server's inbox, empty; the service sends to it (no TLS: local)."""
    controller, inbox = smtp_server
    inbox.messages.clear()
    for name, value in {
        "smtp_host": "127.0.0.1",
        "smtp_port": controller.port,
        "smtp_security": "none",
        "email_from": "Accounts <accounts@example.com>",
        "password_reset_url": RESET_URL,
        "email_verification_url": VERIFY_URL,
    }.items():
        monkeypatch.setattr(settings, name, value)
    return inbox


@pytest.fixture
def alice(client: TestClient, user: dict, inbox: Inbox) -> dict:
    """alice, with an unverified email address, and a login."""
    with SessionLocal.begin() as session:
        session.execute(update(User).values(email="alice@example.com"))
    return {**user, "tokens": start_login(user)}


def ask(client: TestClient, email: str = "alice@example.com") -> int:
    return client.post("/password-reset", json={"email": email}).status_code


def text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def links(inbox: Inbox, to: str | None = None) -> list[str]:
    """The tokens of the mails with a link received (to ``to``), oldest first."""
    return [
        match[1]
        for m in inbox.messages
        if to in (None, m["To"]) and (match := LINK.search(text(m)))
    ]


def mailed_token(inbox: Inbox) -> str:
    """The token in the one mail with a link received (then every mail forgotten:
    notices without a link may have come too)."""
    (token,) = links(inbox)
    inbox.messages.clear()
    return token


def change_address(client: TestClient, headers: dict, email: str | None) -> int:
    """What PATCH /users/me answers to a new address, with alice's password."""
    body = {"email": email, "current_password": PASSWORD}
    return client.patch("/users/me", json=body, headers=headers).status_code


def confirm(client: TestClient, token: str, password: str = NEW_PASSWORD) -> int:
    body = {"token": token, "new_password": password}
    return client.post("/password-reset/confirm", json=body).status_code


def logs_in(client: TestClient, password: str) -> bool:
    form = {"username": "alice", "password": password}
    return client.post("/token", data=form).status_code == 200


def test_a_forgotten_password_is_reset_with_the_mailed_link_once(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    assert ask(client, "ALICE@example.com") == 202
    (message,) = inbox.messages
    assert message["To"] == "alice@example.com"
    assert message["From"] == "Accounts <accounts@example.com>"
    token = mailed_token(inbox)

    assert confirm(client, token) == 204
    assert (logs_in(client, PASSWORD), logs_in(client, NEW_PASSWORD)) == (False, True)
    assert login_statuses(client, alice["tokens"]) == (401, 401)  # every login ended
    assert confirm(client, token, "yet another passphrase") == 400  # used


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    known = client.post("/password-reset", json={"email": "alice@example.com"})
    unknown = client.post("/password-reset", json={"email": "nobody@example.com"})
    assert (unknown.status_code, unknown.content) == (known.status_code, known.content)
    assert [m["To"] for m in inbox.messages] == ["alice@example.com"]


def test_a_token_expires_and_dies_with_a_password_change(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    ask(client)
    expired = mailed_token(inbox)
    with SessionLocal.begin() as session:
        session.execute(
            update(OneTimeToken).values(expires_at=datetime.now(UTC) - timedelta(1))
        )
    assert confirm(client, expired) == 400

    ask(client)
    outdated = mailed_token(inbox)
    change = {"current_password": PASSWORD, "new_password": "changed in between"}
    headers = bearer(alice["tokens"]["access_token"])
    changed = client.post("/users/me/password", json=change, headers=headers)
    assert changed.status_code == 204
    assert confirm(client, outdated) == 400
    assert confirm(client, "not-a-token-we-made") == 400


def test_a_new_request_does_not_extend_an_earlier_token(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    resets = select(OneTimeToken).where(OneTimeToken.purpose == "password_reset")
    ask(client)
    with SessionLocal() as session:
        first = session.scalars(resets).one()
    ask(client)
    with SessionLocal() as session:
        tokens = session.scalars(resets).all()
        again = session.get(OneTimeToken, first.token_hash)
    assert len(tokens) == 2
    assert again is not None and again.expires_at == first.expires_at


def test_requests_and_tries_are_throttled(
    client: TestClient, alice: dict, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "mail_requests_max_per_hour", 2)
    assert [ask(client) for _ in range(3)] == [202, 202, 429]
    monkeypatch.setattr(settings, "login_max_failures_per_address", 2)
    assert [confirm(client, f"wrong-{n}") for n in range(3)] == [400, 400, 429]


def test_the_new_password_follows_the_registration_rules(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    ask(client)
    body = {"token": mailed_token(inbox), "new_password": "short"}
    response = client.post("/password-reset/confirm", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "new_password"]


def test_a_reset_token_opens_nothing_else(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    ask(client)
    token = mailed_token(inbox)
    assert client.get("/users/me", headers=bearer(token)).status_code == 401
    refreshed = client.post("/token/refresh", json={"refresh_token": token})
    assert refreshed.status_code == 401
    assert confirm(client, token) == 204  # still its own use


def pending() -> list[MailRequest]:
    with SessionLocal() as session:
        return list(session.scalars(select(MailRequest)))


def test_a_mail_server_that_is_down_is_tried_again_and_the_mail_sent_once(
    client: TestClient,
    alice: dict,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = settings.smtp_port
    monkeypatch.setattr(settings, "smtp_port", free_port())  # nobody listens
    with caplog.at_level(logging.INFO):
        assert ask(client) == 202
    (request,) = pending()
    assert request.attempts == 1
    assert request.next_attempt_at > datetime.now(UTC) + timedelta(seconds=20)
    (retry,) = logged(caplog, "mail_retry")
    assert retry["error"] == "ConnectionRefusedError"

    monkeypatch.setattr(settings, "smtp_port", port)  # back
    assert deliver_mails() == 0  # not due yet
    with SessionLocal.begin() as session:
        session.execute(update(MailRequest).values(next_attempt_at=datetime.now(UTC)))
    assert deliver_mails() == 1
    assert deliver_mails() == 0
    assert confirm(client, mailed_token(inbox)) == 204
    assert pending() == []
    assert "token=" not in caplog.text


def test_a_mail_server_away_for_good_is_given_up_after_the_last_try(
    client: TestClient,
    alice: dict,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(settings, "smtp_port", free_port())  # nobody listens
    assert ask(client) == 202
    due = {"attempts": MAX_ATTEMPTS - 1, "next_attempt_at": datetime.now(UTC)}
    with SessionLocal.begin() as session:
        session.execute(update(MailRequest).values(**due))
    with caplog.at_level(logging.INFO):
        assert deliver_mails() == 1
    (failed,) = logged(caplog, "mail_failed")
    assert f"{MAX_ATTEMPTS} tries" in failed["reason"]
    assert pending() == []


def test_without_a_reset_page_no_reset_mail_is_sent(
    client: TestClient,
    alice: dict,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(settings, "password_reset_url", None)
    with caplog.at_level(logging.INFO):
        assert ask(client) == 202
    assert [r.msg for r in caplog.records if r.msg.startswith("password_reset")] == [
        "password_reset_off"
    ]
    assert (inbox.messages, pending()) == ([], [])


def test_a_refused_mail_is_given_up_and_logged_without_its_link(
    client: TestClient, alice: dict, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    headers = bearer(alice["tokens"]["access_token"])
    assert change_address(client, headers, "refused@example.com") == 200
    with caplog.at_level(logging.INFO):
        assert ask(client, "refused@example.com") == 202
    (failed,) = [
        f for f in logged(caplog, "mail_failed") if f["purpose"] == "password_reset"
    ]
    assert "550" in failed["reason"]
    assert pending() == []
    assert "token=" not in caplog.text


def test_without_a_mail_server_the_mail_goes_to_the_log(
    client: TestClient,
    alice: dict,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """For development: no SMTP_HOST (production refuses that with a reset URL)."""
    monkeypatch.setattr(settings, "smtp_host", None)
    with caplog.at_level(logging.INFO):
        assert ask(client) == 202
    (mail,) = logged(caplog, "mail")
    assert mail["to"] == "alice@example.com"
    token = LINK.search(mail["text"])
    assert token and confirm(client, token[1]) == 204
    assert inbox.messages == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert), str(key_file)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_is_sent_over_starttls_and_implicit_tls(
    inbox: Inbox,
    certificate: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    security: str,
) -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*certificate)
    secure = Inbox()
    option = "tls_context" if security == "starttls" else "ssl_context"
    extra = {"require_starttls": True} if security == "starttls" else {}
    controller = start(secure, **{option: server_context}, **extra)
    try:
        monkeypatch.setattr(settings, "smtp_port", controller.port)
        monkeypatch.setattr(settings, "smtp_security", security)
        trusted = ssl.create_default_context(cafile=certificate[0])
        monkeypatch.setattr(mail, "tls_context", lambda: trusted)
        mail.send(mail.Mail("alice@example.com", "Hello", "over TLS"))
        # A server whose certificate is not trusted gets nothing.
        monkeypatch.setattr(mail, "tls_context", ssl.create_default_context)
        with pytest.raises(mail.PermanentMailError):
            mail.send(mail.Mail("alice@example.com", "Hello", "over TLS"))
    finally:
        controller.stop()
    assert [m["Subject"] for m in secure.messages] == ["Hello"]


def me(client: TestClient, access_token: str) -> dict:
    return client.get("/users/me", headers=bearer(access_token)).json()


def verify(client: TestClient, token: str) -> int:
    return client.post("/verify-email", json={"token": token}).status_code


def test_a_registered_address_is_verified_with_the_mailed_link_once(
    client: TestClient, inbox: Inbox
) -> None:
    body = {"username": "erin", "password": PASSWORD, "email": "erin@example.com"}
    assert client.post("/register", json=body).status_code == 201
    (message,) = inbox.messages
    assert message["To"] == "erin@example.com"
    assert "verify?token=" in text(message)
    token = mailed_token(inbox)
    tokens = client.post("/login", json=body).json()
    assert me(client, tokens["access_token"])["is_verified"] is False

    assert verify(client, token) == 204
    assert me(client, tokens["access_token"])["is_verified"] is True
    assert verify(client, token) == 400  # used


def test_a_new_address_is_unverified_until_its_own_link_is_opened(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    headers = bearer(alice["tokens"]["access_token"])
    old_link = client.post("/verify-email/resend", headers=headers)
    assert old_link.status_code == 202
    old_token = mailed_token(inbox)
    assert change_address(client, headers, "alice@new.example") == 200
    new_token = mailed_token(inbox)  # sent to the new address
    # The same address in another case: no new link.
    assert change_address(client, headers, "Alice@New.example") == 200
    assert inbox.messages == []
    assert verify(client, old_token) == 400  # for the old address
    assert verify(client, new_token) == 204
    assert me(client, alice["tokens"]["access_token"])["is_verified"] is True
    # A verified address asks for nothing more; the next change unverifies.
    assert client.post("/verify-email/resend", headers=headers).status_code == 202
    assert inbox.messages == []
    assert change_address(client, headers, "alice@other.example") == 200
    assert me(client, alice["tokens"]["access_token"])["is_verified"] is False


def test_a_link_works_for_its_own_purpose_only(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    headers = bearer(alice["tokens"]["access_token"])
    client.post("/verify-email/resend", headers=headers)
    verification = mailed_token(inbox)
    ask(client)
    reset = mailed_token(inbox)
    assert confirm(client, verification) == 400
    assert verify(client, reset) == 400
    assert (verify(client, verification), confirm(client, reset)) == (204, 204)


def test_logins_can_require_a_verified_address(
    client: TestClient, alice: dict, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "require_verified_email", True)
    form = {"username": "alice", "password": PASSWORD}
    refused = client.post("/token", data=form)
    assert refused.status_code == 403
    assert "not verified" in refused.json()["detail"]
    wrong = client.post("/token", data={**form, "password": "wrong password"})
    assert wrong.status_code == 401  # a wrong password says nothing of the address
    client.post("/verify-email/resend", headers=bearer(alice["tokens"]["access_token"]))
    assert verify(client, mailed_token(inbox)) == 204
    assert client.post("/token", data=form).status_code == 200


def test_a_password_change_ends_reset_links_but_not_a_verification_link(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    headers = bearer(alice["tokens"]["access_token"])
    client.post("/verify-email/resend", headers=headers)
    verification = mailed_token(inbox)
    ask(client)
    reset = mailed_token(inbox)
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    changed = client.post("/users/me/password", json=change, headers=headers)
    assert changed.status_code == 204
    assert (confirm(client, reset), verify(client, verification)) == (400, 204)


def test_no_verification_mail_goes_to_an_address_verified_meanwhile(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    request_verification("alice@example.com", "testclient")  # stored, not sent yet
    with SessionLocal.begin() as session:
        session.execute(update(User).values(is_verified=True))
    assert deliver_mails() == 1
    assert inbox.messages == []
    assert pending() == []


def test_an_address_that_mail_would_read_otherwise_is_refused(
    client: TestClient, alice: dict
) -> None:
    """RFC 2047 encoded words are decoded by mail software into another address:
    one that breaks the headers, or one that is someone else's."""
    headers = bearer(alice["tokens"]["access_token"])
    for email in [
        "=?utf-8?q?evil=0D=0ABcc=3A_x=40evil.test?=@example.test",
        "=?utf-8?q?alice?=@example.com",
    ]:
        body = {"username": "mallory", "password": PASSWORD, "email": email}
        assert client.post("/register", json=body).status_code == 422
        assert change_address(client, headers, email) == 422
        assert client.post("/password-reset", json={"email": email}).status_code == 422
    assert me(client, alice["tokens"]["access_token"])["email"] == "alice@example.com"


def test_a_mail_that_cannot_be_made_is_given_up_and_the_next_one_sent(
    client: TestClient, alice: dict, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Mails stored before a rule could refuse them (or by another release) never
    hold up the others: each fails alone, logged."""
    crafted = "=?utf-8?q?evil=0D=0ABcc=3A_x=40evil.test?=@example.test"
    with SessionLocal.begin() as session:
        session.add(User(username="mallory", email=crafted, hashed_password="x"))
        session.add(MailRequest(purpose="password_reset", email=crafted))
        session.add(MailRequest(purpose="of_a_later_release", email=crafted))
    with caplog.at_level(logging.INFO):
        assert ask(client) == 202  # alice's, queued behind them
    assert confirm(client, mailed_token(inbox)) == 204
    failed = logged(caplog, "mail_failed")
    assert {f["purpose"] for f in failed} == {"password_reset", "of_a_later_release"}
    assert pending() == []


def test_addresses_are_one_whatever_their_case_in_any_script(
    client: TestClient, inbox: Inbox
) -> None:
    def register(username: str, email: str) -> int:
        body = {"username": username, "password": PASSWORD, "email": email}
        return client.post("/register", json=body).status_code

    assert register("aerger", "Ärger@Example.test") == 201
    assert register("aerger2", "ärger@example.test") == 409
    assert register("aerger3", "ÄRGER@example.test") == 409
    assert register("strasse", "STRASSE@example.test") == 201
    assert register("strasse2", "straße@example.test") == 409  # folds to "ss"
    assert ask(client, "ÄRGER@EXAMPLE.TEST") == 202
    assert {m["To"] for m in inbox.messages} == {
        "ärger@example.test",  # the verification, then the reset link
        "strasse@example.test",
    }
    assert confirm(client, mailed_token_to(inbox, "ärger@example.test")) == 204


def mailed_token_to(inbox: Inbox, address: str) -> str:
    """The token of the last mail with a link to ``address``."""
    *_, token = links(inbox, to=address)
    return token


def notices_to(inbox: Inbox, address: str) -> list[str]:
    """The texts of the mails without a link ``address`` received."""
    texts = [text(m) for m in inbox.messages if m["To"] == address]
    return [t for t in texts if "http" not in t]


def test_a_new_address_needs_the_password_and_the_old_one_is_told(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    """A stolen access token alone cannot move the account's resets elsewhere."""
    headers = bearer(alice["tokens"]["access_token"])
    thief = {"email": "thief@evil.example"}
    assert client.patch("/users/me", json=thief, headers=headers).status_code == 422
    null = {**thief, "current_password": None}
    assert client.patch("/users/me", json=null, headers=headers).status_code == 422
    wrong = {**thief, "current_password": "a guess"}
    answer = client.patch("/users/me", json=wrong, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["detail"] == "Current password is incorrect"
    assert inbox.messages == []

    assert change_address(client, headers, "alice@new.example") == 200
    (notice,) = notices_to(inbox, "alice@example.com")
    assert "alice@example.com" in notice
    assert mailed_token_to(inbox, "alice@new.example")
    inbox.messages.clear()
    assert change_address(client, headers, None) == 200  # no address: told too
    assert len(notices_to(inbox, "alice@new.example")) == 1


def test_a_new_password_is_told_to_the_address_without_a_link(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    headers = bearer(alice["tokens"]["access_token"])
    changed = client.post("/users/me/password", json=change, headers=headers)
    assert changed.status_code == 204
    assert len(notices_to(inbox, "alice@example.com")) == 1
    inbox.messages.clear()
    ask(client)
    assert confirm(client, mailed_token(inbox), "yet another passphrase") == 204
    assert len(notices_to(inbox, "alice@example.com")) == 1


def test_wrong_passwords_for_a_new_address_are_throttled_like_logins(
    client: TestClient, alice: dict, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "login_max_failures", 2)
    headers = bearer(alice["tokens"]["access_token"])
    body = {"email": "alice@new.example", "current_password": "a guess"}
    statuses = [client.patch("/users/me", json=body, headers=headers).status_code]
    statuses += [client.patch("/users/me", json=body, headers=headers).status_code]
    statuses += [change_address(client, headers, "alice@new.example")]
    assert statuses == [400, 400, 429]
    assert login_statuses(client, alice["tokens"]) == (200, 200)  # no one logged out


def test_a_right_password_for_a_taken_address_is_no_failed_attempt(
    client: TestClient, alice: dict, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "login_max_failures", 2)
    body = {"username": "bob", "password": PASSWORD, "email": "bob@example.com"}
    assert client.post("/register", json=body).status_code == 201
    headers = bearer(alice["tokens"]["access_token"])
    taken = [change_address(client, headers, "bob@example.com") for _ in range(3)]
    assert taken == [409, 409, 409]
    assert logs_in(client, PASSWORD)


def test_address_changes_are_throttled_like_requests_for_a_link(
    client: TestClient, alice: dict, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taken or free, each new address counts: no oracle of registered addresses
    beyond registration's own, and no flood of mails to someone else's."""
    monkeypatch.setattr(settings, "mail_requests_max_per_hour", 3)
    client.post(
        "/register",
        json={"username": "bob", "password": PASSWORD, "email": "bob@example.com"},
    )
    headers = bearer(alice["tokens"]["access_token"])
    addresses = ["bob@example.com", "victim@example.com"] * 3
    statuses = [change_address(client, headers, email) for email in addresses]
    assert statuses == [409, 200, 409, 429, 429, 429]
    assert len([m for m in inbox.messages if m["To"] == "victim@example.com"]) == 1


def test_tokens_are_refused_on_every_path_to_an_unverified_address_when_required(
    client: TestClient, alice: dict, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logins made before the rule (or before the address changed) cannot refresh."""
    monkeypatch.setattr(settings, "require_verified_email", True)
    refresh_token = alice["tokens"]["refresh_token"]
    json_refresh = client.post("/token/refresh", json={"refresh_token": refresh_token})
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    form_refresh = client.post("/token", data=form)
    assert (json_refresh.status_code, form_refresh.status_code) == (403, 403)
    assert "not verified" in form_refresh.json()["detail"]

    # Signed out, the user asks for a link, as for a reset.
    resend = client.post("/verify-email/resend", json={"email": "alice@example.com"})
    assert resend.status_code == 202
    assert verify(client, mailed_token(inbox)) == 204
    assert client.post("/token", data=form).status_code == 200


def test_a_signed_out_request_for_a_link_reveals_nothing(
    client: TestClient, alice: dict, inbox: Inbox
) -> None:
    def resend(email: str) -> tuple[int, bytes]:
        answer = client.post("/verify-email/resend", json={"email": email})
        return answer.status_code, answer.content

    assert resend("nobody@example.com") == resend("alice@example.com")
    assert [m["To"] for m in inbox.messages] == ["alice@example.com"]
    assert verify(client, mailed_token(inbox)) == 204
    assert resend("alice@example.com")[0] == 202  # verified: nothing more
    assert inbox.messages == []


def test_strangers_cannot_use_up_the_owners_reset_requests(
    client: TestClient, alice: dict, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reset requests count per client address, and per address mailed at a client
    address, as logins do: never per mailed address alone."""
    maximum = 2
    monkeypatch.setattr(settings, "mail_requests_max_per_hour", maximum)
    for n in range(maximum + 1):
        stranger = TestClient(app, client=(f"203.0.113.{n}", 50000))
        stranger.post("/password-reset", json={"email": "alice@example.com"})
    inbox.messages.clear()
    assert ask(client) == 202  # the owner, at their own address
    assert confirm(client, mailed_token(inbox)) == 204
    stranger = TestClient(app, client=("198.51.100.1", 50000))
    asked = [
        stranger.post("/password-reset", json={"email": "alice@example.com"})
        for _ in range(maximum + 1)
    ]
    assert asked[-1].status_code == 429
