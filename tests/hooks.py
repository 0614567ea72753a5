"""The template's hooks and Jinja extension, importable as plain modules."""

from .support import extension, load_template_module

pre_gen = load_template_module("hooks/pre_gen_project.py", "pre_gen_project")
post_gen = load_template_module("hooks/post_gen_project.py", "post_gen_project")

__all__ = ["extension", "post_gen", "pre_gen"]
