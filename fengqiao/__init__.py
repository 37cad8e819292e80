"""Common ground for every Fengqiao package: settings, exceptions and logging set-up."""

from fengqiao.errors import FengqiaoError, InputDataError, ConfigurationError
from fengqiao.settings import Settings

__all__ = ["ConfigurationError", "FengqiaoError", "InputDataError", "Settings"]
