"""The one exception type for bad user input.

Every invalid flag, env id, space, preset or checkpoint raises ``ConfigError``
with a single line that names the problem and the allowed values; the CLIs turn
it into that line on stderr and exit code 2, before anything is written.
"""


class ConfigError(ValueError):
    """Invalid user-supplied setting; the message is one line meant for the user."""
