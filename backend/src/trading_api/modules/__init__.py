"""Registry of the modules a server can enable through ENABLED_MODULES.

Each module's source lives in `modules/{name}/`; the dev tool relies on that path to
exclude other servers' modules from reload watching.
"""

from trading_api.modules.base import Module, ModuleRuntime
from trading_api.modules.broker import MODULE as BROKER
from trading_api.modules.datafeed import MODULE as DATAFEED

MODULES: dict[str, Module] = {module.name: module for module in (BROKER, DATAFEED)}
MODULE_NAMES: tuple[str, ...] = tuple(MODULES)

__all__ = ["MODULES", "MODULE_NAMES", "Module", "ModuleRuntime"]
