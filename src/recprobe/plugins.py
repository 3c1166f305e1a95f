"""The plugin manager: built-in adapters plus every ``recprobe`` entry point (``RECPROBE_LOAD_PLUGINS``
restricts which: a comma-separated list of entry-point names, empty for none).

One broken plugin breaks nothing else: a plugin that fails to import, whose hook raises, or that registers
something other than an ``Adapter`` is left out with one ``PluginWarning`` naming it and what went wrong, and
every command that does not use it works."""

from __future__ import annotations

import importlib.metadata
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import pluggy

import recprobe.hookspecs as hookspecs
from recprobe.adapters.base import Adapter
from recprobe.data.split import Split
from recprobe.errors import RecprobeError, unknown_name
from recprobe.settings import settings
from recprobe.target import ProbeTarget
from recprobe.version import __version__

BUILTIN_PLUGINS = ("recprobe.adapters.builtin", "recprobe.adapters.recbole", "recprobe.adapters.torch")
ENTRY_POINT_GROUP = "recprobe"


class PluginWarning(UserWarning):
    """A plugin was left out because it is broken; the command line prints it as one ``warning:`` line."""


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
    names = ({entry.name for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)} if allowed is None
             else set(filter(None, (n.strip() for n in allowed.split(",")))))
    for name in sorted(names):
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except (Exception, SystemExit) as e:  # noqa: BLE001 (any failure of a plugin's own import leaves it out)
            _left_out(f"the plugin {name!r}{_distribution(name)} failed to import", e)
    return pm


def _distribution(entry_point: str) -> str:
    """`` (package <name>)`` for the distribution that declares ``entry_point``, when one does."""
    found = [e.dist.name for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=entry_point) if e.dist]
    return f" (package {found[0]})" if found else ""


def _left_out(what: str, error: BaseException) -> None:
    message = " ".join(f"{type(error).__name__}: {error}".split())[:300]
    warnings.warn(f"{what} and is left out: {message}; uninstall it, or leave it out with RECPROBE_LOAD_PLUGINS",
                  PluginWarning, stacklevel=3)


def _provider(pm: pluggy.PluginManager, plugin: Any) -> tuple[str, str]:
    """The distribution (name, version) a plugin came from; a plugin registered by hand has only its name."""
    for registered, dist in pm.list_plugin_distinfo():
        if registered is plugin and dist is not None:
            return dist.metadata["Name"], dist.version
    name = pm.get_name(plugin) or repr(plugin)
    return ("recprobe", __version__) if name in BUILTIN_PLUGINS else (name, "")


def collect_adapters(pm: pluggy.PluginManager) -> dict[str, RegisteredAdapter]:
    """Every adapter the plugins register, by name, with the package that provides it."""
    found: dict[str, RegisteredAdapter] = {}
    for impl in pm.hook.register_adapters.get_hookimpls():
        package, version = _provider(pm, impl.plugin)
        mine: dict[str, RegisteredAdapter] = {}

        def register(adapter: Adapter, package: str = package, version: str = version, mine=mine) -> None:
            if not isinstance(adapter, Adapter):
                raise TypeError(f"register() takes a recprobe.adapters.Adapter, got {type(adapter).__name__} {adapter!r:.80}")
            claimed = found.get(adapter.name) or mine.get(adapter.name)
            if claimed is not None:
                raise RecprobeError(
                    f"adapter {adapter.name!r} is registered by both {claimed.package} and {package}; uninstall one, "
                    "or restrict plugins with RECPROBE_LOAD_PLUGINS"
                )
            mine[adapter.name] = RegisteredAdapter(adapter, package, version)

        try:
            impl.function(register=register)
        except RecprobeError:
            raise  # two packages claim one name: which one is meant is the user's choice
        except (Exception, SystemExit) as e:  # noqa: BLE001 (a broken plugin is left out whole)
            _left_out(f"the plugin {package}'s register_adapters hook failed", e)
            continue
        found.update(mine)
    return found


@cache
def adapters() -> dict[str, RegisteredAdapter]:
    """The adapters available in this process (cached; ``adapters.cache_clear()`` to rescan)."""
    return collect_adapters(plugin_manager())


def load_target(adapter: str, *, split: Split | None = None, **options: Any) -> ProbeTarget:
    """Build a ProbeTarget with the named adapter, e.g. ``load_target("sasrec", run="runs/quickstart")``;
    ``split``: the data, for an adapter whose target is shaped by it (``Adapter.takes_split``)."""
    known = adapters()
    if adapter not in known:
        raise unknown_name("adapter", adapter, list(known))
    return open_target(known[adapter], options, split)


def open_target(registered: RegisteredAdapter, options: dict[str, Any], split: Split | None = None) -> ProbeTarget:
    """The target an adapter loads from its options (and ``split``, when it takes one); an adapter that fails
    in a way of its own (not a recprobe error, which already says what to do) or returns something other than a
    ProbeTarget is named in one error."""
    spec = registered.adapter
    parsed = spec.Options(**options)
    if spec.takes_split and split is None:
        raise RecprobeError(f"the adapter {spec.name!r} builds its target for a dataset: pass the split, "
                            f"recprobe.load_target({spec.name!r}, split=recprobe.load_dataset(...), ...)")
    try:
        target = spec.load(parsed, split) if spec.takes_split else spec.load(parsed)
    except RecprobeError:  # recprobe's own errors already say what to do
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001
        raise RecprobeError(f"the adapter {spec.name!r} ({registered.package}) failed to load its target: "
                            f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from e
    if not isinstance(target, ProbeTarget):
        raise RecprobeError(f"the adapter {spec.name!r} ({registered.package}) returned {type(target).__name__} "
                            f"{target!r:.80}, not a ProbeTarget (an object with name, n_items, d_model, max_history, "
                            "represent, score, predict and item_embeddings)")
    return target
