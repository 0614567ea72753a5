"""The Jinja extension cookiecutter loads (``_extensions`` in cookiecutter.json).

It holds no logic: each time cookiecutter makes a Jinja environment, it reloads
``local_extensions.py`` from the template being rendered, which installs its
helpers. cruft renders two commits of this template in one process (the one a
project was made from, then the newest): a module imported once would render the
second with the first one's helpers. Old and new commits alike run this file, so
it stays as it is.
"""

from __future__ import annotations

import importlib
from typing import Any

from jinja2.ext import Extension


class TemplateExtension(Extension):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        helpers = importlib.reload(importlib.import_module("local_extensions"))
        helpers.install(environment)
