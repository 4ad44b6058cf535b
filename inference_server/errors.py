"""Errors meant for users: one line, no traceback (CLI exit code 2, server error reply)."""


class UserError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
