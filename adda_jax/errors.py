"""User-facing errors.

Anything the user can fix (a bad flag, missing data, a checkpoint that does not match) is raised
as `UserError`; the CLI prints its message on one line and exits non-zero instead of showing a
stack trace from deep inside JAX or TFDS.
"""


class UserError(Exception):
  """A problem with the user's input, with a message that says what to do about it."""
