"""The project's exceptions: few, and each says what was wrong and what to do."""


class FengqiaoError(Exception):
    """Base class of every error Fengqiao raises on purpose."""


class ConfigurationError(FengqiaoError):
    """Settings, a mapping file or a command-line option is wrong or missing."""


class InputDataError(FengqiaoError):
    """An input source cannot be read at all (missing required table, unreadable file).

    Row-level problems never raise: they go to the rejects table.
    """


class ServiceUnavailable(FengqiaoError):
    """An external service (the MLflow tracking server, a database) did not answer."""
