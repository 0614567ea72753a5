"""The template's hooks and Jinja extension, importable as plain modules."""

import importlib.util
import sys
from types import ModuleType

from .support import TEMPLATE


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pre_gen = load("hooks/pre_gen_project.py", "pre_gen_project")
post_gen = load("hooks/post_gen_project.py", "post_gen_project")
extension = load("local_extensions.py", "local_extensions")
