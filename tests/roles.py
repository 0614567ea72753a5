"""A generated project read with its modules named by role rather than by place, so
that the projects of two structures can be compared (test_generation)."""

from __future__ import annotations

import re

from .hooks import extension
from .support import Baked

#: Files that differ between structures by design: the README describes the
#: structure, and .env holds the fresh secret of each generation.
DESCRIBES_ITSELF = {"README.md", ".env"}


def differences(first: Baked, second: Baked) -> list[str]:
    """The files in which two generated projects differ once each is read with its
    modules named by role rather than by place (see ``Roles.read``)."""
    one, other = _read(first), _read(second)
    return sorted(key for key in one.keys() | other.keys() if one.get(key) != other.get(key))


def _read(project: Baked) -> dict[str, str]:
    """{key: text read by role} of each file of ``project`` but those that differ
    by design, and the empty ``__init__.py`` of the folders a structure adds."""
    roles = Roles(project.package, project.answers["structure"])
    read = {}
    for path in sorted(project.path.rglob("*")):
        relative = path.relative_to(project.path).as_posix()
        if not path.is_file() or "__pycache__" in path.parts or relative in DESCRIBES_ITSELF:
            continue
        text = path.read_text(encoding="utf-8")
        if path.name == "__init__.py" and not text and path.parent != project.package_dir:
            continue
        read[roles.files.get(relative, relative)] = roles.read(text)
    return read


#: An import statement, wrapped or not: indentation, then ``from`` module and names
#: or ``import`` and names.
IMPORT = re.compile(
    r"^([ \t]*)(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)|import[ \t]+([^\n]*))\n",
    re.MULTILINE,
)


class Roles:
    """Module names and file paths of one structure, and their roles."""

    def __init__(self, package: str, structure: str) -> None:
        layout = extension.LAYOUTS[structure]
        self.modules = {f"{package}.{place}": f"<{role}>" for role, place in layout.items()}
        #: A module's file is known by its role (``<config>.py``).
        self.files = {
            extension.module_file(package, structure, role): f"<{role}>.py" for role in layout
        }
        # Longest first: a module's name may begin another's.
        names = sorted([*self.modules, *self.files], key=len, reverse=True)
        self._names = re.compile("|".join(rf"{re.escape(name)}(?!\w)" for name in names))

    def read(self, text: str) -> str:
        """``text`` with every import reduced to the names it binds and what they are,
        one per line (``from pkg.core import config`` and ``from pkg import config``
        read the same), every module name or file path replaced by its role, and
        each run of imports sorted (each structure sorts and wraps its imports by
        its own module names)."""
        text = IMPORT.sub(self._bindings, text)
        text = self._names.sub(lambda m: self.modules.get(m[0]) or self.files[m[0]], text)
        return re.sub(r"(?:^[ \t]*import .*\n)+", _sorted_lines, text, flags=re.MULTILINE)

    def _bindings(self, match: re.Match[str]) -> str:
        indent, module, names = match[1], match[2], match[3] or match[4]
        lines = []
        for item in re.sub(r"#[^\n]*", "", names).strip("()").split(","):
            name, _, alias = item.strip().partition(" as ")
            if not name:
                continue
            target = f"{module}.{name}" if module else name
            target = self.modules.get(target, target)
            lines.append(f"{indent}import {alias or name.split('.')[0]} = {target}\n")
        return "".join(lines)


def _sorted_lines(match: re.Match[str]) -> str:
    return "".join(sorted(match[0].splitlines(keepends=True)))
