"""Errors that reach users.

Everything a user can get wrong (a bad argument, a missing column, a corrupt checkpoint) raises
:class:`InputError`, a ``ValueError``; the CLI turns it into one line on stderr and exit code 2.
Messages name what was expected and what came: ``"expected input_size 3, got 5"``. Where ``torch.nn`` raises
another type for the same mistake, the error subclasses both (:class:`ShapeError` is a ``RuntimeError``,
:class:`ArgumentTypeError` a ``TypeError``...).
"""


class InputError(ValueError):
    """A user-facing problem with arguments, files or data; never a bug in rnnlab."""


# The layers raise the exception type torch.nn raises for the same mistake, so that code that catches torch's
# errors catches ours; each is also an InputError (the CLI's one-line "bad input").
class ShapeError(InputError, RuntimeError):
    """A tensor of the wrong shape or size (torch.nn: ``RuntimeError``)."""


class ArgumentTypeError(InputError, TypeError):
    """An argument of the wrong type, e.g. a float ``hidden_size`` (torch.nn: ``TypeError``)."""


class NotATensorError(ArgumentTypeError, AttributeError):
    """A list or tuple where a layer takes a Tensor (torch.nn fails with ``AttributeError`` reading ``.dim()``)."""


class StateCountError(ShapeError, IndexError):
    """The wrong number of state tensors for the family (torch.nn: ``RuntimeError`` for an LSTM given three,
    ``IndexError`` for an LSTM given one)."""


class InputWarning(UserWarning):
    """Something in the user's data or arguments was skipped or replaced (rows with empty text, characters
    outside a vocabulary); the message says what and how many. The CLI prints it as one line on stderr."""
