"""What every request body shares: text that is safe to store, compare and log."""

import unicodedata

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

#: Unicode categories no text field accepts: control characters (NUL, escape,
#: newline...) and lone surrogates, which no database or log line should receive.
REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})
#: The rule as the API document states it: no control character. (Lone surrogates
#: are not text to JSON Schema engines, which cannot name them in a pattern.)
CLEAN_TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"


def is_clean_text(text: str) -> bool:
    """Whether ``text`` holds no control character and no lone surrogate."""
    return text.isprintable() or not any(
        unicodedata.category(character) in REFUSED_CATEGORIES for character in text
    )


class RequestModel(BaseModel):
    """Base of every request body: values of the types the schema states (no
    ``0`` for ``false``), and each text field refuses control characters and lone
    surrogates (422), whatever else it checks."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def clean_text(cls, value: object) -> object:
        if isinstance(value, str) and not is_clean_text(value):
            raise ValueError("must not contain control characters or lone surrogates")
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """State the rule in the schema of every free text field (a pattern of its
        own, like the username's, a format such as email's, or a list of values
        already excludes them)."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        for field in schema.get("properties", {}).values():
            for option in field.get("anyOf", [field]):
                free = not {"pattern", "format", "enum", "const"} & option.keys()
                if option.get("type") == "string" and free:
                    option["pattern"] = CLEAN_TEXT_PATTERN
        return schema
