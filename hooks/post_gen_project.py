"""Finish the generated project: move modules into the chosen structure, drop
the files of unselected options and write a .env with a fresh secret."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

MOVES_JSON = r"""{{ layout_moves() | tojson }}"""
UNSELECTED_JSON = r"""{{ unselected_files() | tojson }}"""


def apply_layout(root: Path, moves: dict[str, str]) -> None:
    """Move role modules to their place in the structure; every folder a module
    lands in becomes a package."""
    for source, destination in moves.items():
        package_root = (root / source).parent
        target = root / destination
        target.parent.mkdir(parents=True, exist_ok=True)
        (root / source).rename(target)
        folder = target.parent
        while folder != package_root:
            (folder / "__init__.py").touch()
            folder = folder.parent


def write_env(root: Path) -> None:
    """Copy .env.example to .env with a fresh random SECRET_KEY (.env is git-ignored)."""
    example = (root / ".env.example").read_text(encoding="utf-8")
    secret = secrets.token_urlsafe(64)
    lines = [
        f"SECRET_KEY={secret}" if line.startswith("SECRET_KEY=") else line
        for line in example.splitlines()
    ]
    env = root / ".env"
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env.chmod(0o600)


def main() -> int:
    root = Path.cwd()
    for path in json.loads(UNSELECTED_JSON):  # modules of the choices not made
        (root / path).unlink()
    apply_layout(root, json.loads(MOVES_JSON))
    write_env(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
