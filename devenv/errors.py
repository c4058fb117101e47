"""Errors that devenv reports to the user as one sentence, without a traceback."""

EXIT_FAILURE = 1
EXIT_USAGE = 2


class DevenvError(Exception):
    """A failure the user can act on; the message is shown as is."""

    exit_code = EXIT_FAILURE


class ConfigError(DevenvError):
    """An invalid or unreadable config file; the message lists every problem found."""

    exit_code = EXIT_USAGE
