"""The plugin manager: built-in adapters plus every ``recprobe`` entry point (``RECPROBE_LOAD_PLUGINS``
restricts which: a comma-separated list of entry-point names, empty for none)."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from functools import cache
from typing import Any

import pluggy

import recprobe
from recprobe import hookspecs
from recprobe.adapters.base import Adapter
from recprobe.errors import RecprobeError, unknown_name
from recprobe.settings import settings
from recprobe.target import ProbeTarget

BUILTIN_PLUGINS = ("recprobe.adapters.builtin", "recprobe.adapters.recbole", "recprobe.adapters.torch")
ENTRY_POINT_GROUP = "recprobe"


@dataclass(frozen=True)
class RegisteredAdapter:
    adapter: Adapter
    package: str  # the distribution that provides it
    version: str


def plugin_manager() -> pluggy.PluginManager:
    """A fresh manager with the built-in plugins and the allowed entry-point plugins registered."""
    pm = pluggy.PluginManager("recprobe")
    pm.add_hookspecs(hookspecs)
    for module in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module), name=module)
    allowed = settings().load_plugins
    if allowed is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        for name in filter(None, (n.strip() for n in allowed.split(","))):
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    return pm


def _provider(pm: pluggy.PluginManager, plugin: Any) -> tuple[str, str]:
    """The distribution (name, version) a plugin came from; a plugin registered by hand has only its name."""
    for registered, dist in pm.list_plugin_distinfo():
        if registered is plugin and dist is not None:
            return dist.metadata["Name"], dist.version
    name = pm.get_name(plugin) or repr(plugin)
    return ("recprobe", recprobe.__version__) if name in BUILTIN_PLUGINS else (name, "")


def collect_adapters(pm: pluggy.PluginManager) -> dict[str, RegisteredAdapter]:
    """Every adapter the plugins register, by name, with the package that provides it."""
    found: dict[str, RegisteredAdapter] = {}
    for impl in pm.hook.register_adapters.get_hookimpls():
        package, version = _provider(pm, impl.plugin)

        def register(adapter: Adapter, package: str = package, version: str = version) -> None:
            if adapter.name in found:
                raise RecprobeError(
                    f"adapter {adapter.name!r} is registered by both {found[adapter.name].package} and {package}; "
                    "uninstall one, or restrict plugins with RECPROBE_LOAD_PLUGINS"
                )
            found[adapter.name] = RegisteredAdapter(adapter, package, version)

        impl.function(register=register)
    return found


@cache
def adapters() -> dict[str, RegisteredAdapter]:
    """The adapters available in this process (cached; ``adapters.cache_clear()`` to rescan)."""
    return collect_adapters(plugin_manager())


def load_target(adapter: str, **options: Any) -> ProbeTarget:
    """Build a ProbeTarget with the named adapter, e.g. ``load_target("sasrec", run="runs/quickstart")``."""
    known = adapters()
    if adapter not in known:
        raise unknown_name("adapter", adapter, list(known))
    spec = known[adapter].adapter
    return spec.load(spec.Options(**options))
