"""The one base class of every error a user can cause (bad data, recipe, model folder, setup).

Commands catch `XlingAlignError` and end with one `error:` line and exit status 2; anything else is a bug and keeps
its traceback. Each subclass also keeps the built-in base it had (`ValueError`, `ConnectionError`, ...), so code that
caught those goes on working.
"""


class XlingAlignError(Exception):
    """A mistake in what the user gave (its message names the input, what is wrong and what to do)."""
