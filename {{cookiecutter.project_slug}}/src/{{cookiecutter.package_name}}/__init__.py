"""{{ cookiecutter.package_name }}: username/password login and JWT bearer tokens (app in main.py)."""
