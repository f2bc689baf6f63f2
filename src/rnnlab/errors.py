"""Errors that reach users.

Everything a user can get wrong (a bad argument, a missing column, a corrupt checkpoint) raises
:class:`InputError`, a ``ValueError``; the CLI turns it into one line on stderr and exit code 2.
Messages name what was expected and what came: ``"expected input_size 3, got 5"``.
"""


class InputError(ValueError):
    """A user-facing problem with arguments, files or data; never a bug in rnnlab."""


class InputWarning(UserWarning):
    """Something in the user's data or arguments was skipped or replaced (rows with empty text, characters
    outside a vocabulary); the message says what and how many. The CLI prints it as one line on stderr."""
