"""Errors that the CLI turns into one clear line and a non-zero exit."""


class UserError(Exception):
    """Bad input or an unsupported setup; the message is shown to the user as is."""
