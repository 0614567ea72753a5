"""What every request body shares: text that is safe to store, compare and log."""

import unicodedata

from pydantic import BaseModel, field_validator

#: Unicode categories no text field accepts: control characters (NUL, escape,
#: newline...) and lone surrogates, which no database or log line should receive.
REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})


def is_clean_text(text: str) -> bool:
    """Whether ``text`` holds no control character and no lone surrogate."""
    return text.isprintable() or not any(
        unicodedata.category(character) in REFUSED_CATEGORIES for character in text
    )


class RequestModel(BaseModel):
    """Base of every request body: each text field refuses control characters and
    lone surrogates (422), whatever else it checks."""

    @field_validator("*", mode="after")
    @classmethod
    def clean_text(cls, value: object) -> object:
        if isinstance(value, str) and not is_clean_text(value):
            raise ValueError("must not contain control characters or lone surrogates")
        return value
