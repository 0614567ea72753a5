"""Checking credentials; issuing, rotating and revoking tokens.

Each login starts a session: a family of refresh tokens, each exchangeable once
for a new pair. Refresh tokens are random strings stored only as their SHA-256.
Presenting one that was already exchanged means it was copied, so the whole
session is revoked; access tokens name their session, so they stop working too.
"""

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

{{ imports(auth_schemas="Token", config="settings", database="read_one", models="AuthSession, RefreshToken, User, utcnow", passwords="hash_password, verify_password", tokens="create_access_token", user_schemas="UserPublic", user_service="get_user_by_username") }}

#: The active user of a login that is not revoked: the one query behind every
#: authenticated request (Core, built once: a fraction of an ORM session's cost).
CALLER = (
    select(*(User.__table__.c[name] for name in UserPublic.model_fields))
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        User.is_active.is_(True),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
    )
)


def find_caller(user_id: int, session_id: str) -> UserPublic | None:
    """The active user whose login ``session_id`` is live, read now (so revocation
    and deactivation take effect at once, whichever worker served them)."""
    row = read_one(CALLER, {"user_id": user_id, "session_id": session_id})
    # Values straight from our own database need no validation.
    return UserPublic.model_construct(**row) if row else None


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None.

    Costs one password check whether or not the user exists, and upgrades an
    outdated password hash on success.
    """
    user = get_user_by_username(session, username)
    session.commit()  # ends the read: no pooled connection is held during the hash
    valid, new_hash = verify_password(password, user.hashed_password if user else None)
    if user is None or not valid or not user.is_active:
        return None
    if new_hash is not None:
        user.hashed_password = new_hash
        session.commit()
    return user


def start_session(session: Session, user: User) -> Token:
    """A new login for ``user``: its first access and refresh tokens."""
    auth_session = AuthSession(id=uuid.uuid4().hex, user_id=user.id)
    session.add(auth_session)
    session.flush()
    return _issue(session, user, auth_session)


def refresh(session: Session, refresh_token: str) -> Token | None:
    """Exchange a refresh token for a new pair, or None if it is not valid now."""
    found = session.execute(
        select(RefreshToken, AuthSession, User)
        .join(AuthSession, RefreshToken.session_id == AuthSession.id)
        .join(User, AuthSession.user_id == User.id)
        .where(RefreshToken.token_hash == _digest(refresh_token))
    ).one_or_none()
    if found is None:
        return None
    token, auth_session, user = found
    now = utcnow()
    if auth_session.revoked_at or token.expires_at <= now or not user.is_active:
        return None
    # Mark it used in one statement, so two concurrent uses cannot both succeed.
    claimed = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token.token_hash, RefreshToken.used_at.is_(None)
        )
        .values(used_at=now)
    ).rowcount
    if not claimed:
        auth_session.revoked_at = now  # reuse: someone else holds a copy
        session.commit()
        return None
    return _issue(session, user, auth_session)


def logout(session: Session, refresh_token: str) -> None:
    """Revoke the session ``refresh_token`` belongs to (unknown tokens are ignored)."""
    session_id = select(RefreshToken.session_id).where(
        RefreshToken.token_hash == _digest(refresh_token)
    )
    session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(session_id), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.commit()


def revoke_all_sessions(session: Session, user: User) -> None:
    """End every login of ``user``: all its access and refresh tokens stop working."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.commit()


def change_password(session: Session, user: User, current: str, new: str) -> bool:
    """Set a new password if ``current`` is right, and end every login."""
    if not verify_password(current, user.hashed_password)[0]:
        return False
    user.hashed_password = hash_password(new)
    revoke_all_sessions(session, user)
    return True


def _issue(session: Session, user: User, auth_session: AuthSession) -> Token:
    refresh_token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=settings.refresh_token_expire_days)
    session.add(
        RefreshToken(
            token_hash=_digest(refresh_token),
            session_id=auth_session.id,
            expires_at=utcnow() + lifetime,
        )
    )
    session.commit()
    return Token(
        access_token=create_access_token(str(user.id), auth_session.id),
        expires_in=settings.access_token_expire_minutes * 60,
        refresh_token=refresh_token,
        refresh_expires_in=int(lifetime.total_seconds()),
    )


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()
