"""Mail: messages made from the templates in ``templates/``, sent over SMTP.

Without SMTP_HOST (development and test only: see the settings), a message is
written to the log instead, link included, so that a developer can follow it.
Sending blocks: call ``send`` from a thread.
"""

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from importlib.resources import files
from string import Template

{{ imports(config="settings", middleware="log_event") }}

#: Seconds to connect to the SMTP server, and for each of its answers.
SMTP_TIMEOUT = 10
#: The port each security mode uses unless SMTP_PORT says otherwise.
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
#: The mails' texts: ``templates/`` at the top of the package.
TEMPLATES = files(__name__.partition(".")[0]) / "templates"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


class PermanentMailError(Exception):
    """The server refused the mail for good (or the settings cannot work): trying
    again would not help."""


def render(template: str, to: str, **values: str) -> Mail:
    """``templates/<template>.txt`` filled with ``values`` (``$name`` placeholders);
    its first line is ``Subject: ...``."""
    source = (TEMPLATES / f"{template}.txt").read_text(encoding="utf-8")
    subject_line, _, body = Template(source).substitute(values).partition("\n")
    return Mail(to=to, subject=subject_line.removeprefix("Subject:").strip(), text=body)


def send(mail: Mail) -> None:
    """Hand ``mail`` to the SMTP server (or, without SMTP_HOST, to the log).
    Raises PermanentMailError when trying again cannot help, and OSError (the
    base of smtplib's errors) when it may."""
    if not settings.smtp_host:
        log_event("mail", to=mail.to, subject=mail.subject, text=mail.text)
        return
    message = EmailMessage()
    try:
        message["From"] = settings.email_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
    except ValueError as error:  # a header that cannot be written as it is
        raise PermanentMailError(f"cannot be written: {type(error).__name__}") from None
    try:
        with _connect() as server:
            if settings.smtp_user and settings.smtp_password:
                server.login(
                    settings.smtp_user, settings.smtp_password.get_secret_value()
                )
            server.send_message(message)  # to one recipient: refused, it raises
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise _by_code(codes, "recipient refused") from None
    except smtplib.SMTPResponseException as error:
        raise _by_code([error.smtp_code], "refused") from None
    except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as error:
        raise PermanentMailError(type(error).__name__) from None


def tls_context() -> ssl.SSLContext:
    """The certificates SMTP servers are checked against: the system's."""
    return ssl.create_default_context()


def _connect() -> smtplib.SMTP:
    host = settings.smtp_host or ""
    port = settings.smtp_port or DEFAULT_PORTS[settings.smtp_security]
    if settings.smtp_security == "tls":
        return smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=tls_context())
    server = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
    if settings.smtp_security == "starttls":
        try:
            server.starttls(context=tls_context())
        except BaseException:
            server.close()
            raise
    return server


def _by_code(codes: list[int], what: str) -> Exception:
    """RFC 5321: 4yz answers are temporary, 5yz permanent."""
    if all(400 <= code < 500 for code in codes):
        return smtplib.SMTPException(f"{what}: {codes} (temporary)")
    return PermanentMailError(f"{what}: {codes}")
