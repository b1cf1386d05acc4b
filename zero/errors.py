"""Errors meant for the user: run.py prints the message alone and exits non-zero."""


class UserError(Exception):
    """Bad input or configuration. The message names the file, line or key at fault."""
