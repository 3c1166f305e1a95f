"""ProbeTarget adapters: built-ins, the plugin manager and its hook, check_probe_target, torch wrap."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import recprobe
from recprobe.adapters.base import Adapter, AdapterOptions
from recprobe.errors import RecprobeError, UnknownNameError
from recprobe.hookspecs import hookimpl
from recprobe.models import MODELS, TrainConfig, build_model
from recprobe.plugins import collect_adapters, open_target, plugin_manager
from recprobe.runs.fit import fit_run
from recprobe.testing import ProbeTargetCheckError, check_probe_target
from tests.conftest import probe_batch, use_synthetic


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builtin_models_keep_the_probe_target_rules(split, name):
    model = build_model(name, split, seed=0, d=8).eval()
    assert isinstance(model, recprobe.ProbeTarget)
    check_probe_target(model, probe_batch(split, model.max_history))


def test_load_target_reads_a_run_folder_through_the_builtin_adapter(split, tmp_path, monkeypatch):
    use_synthetic(monkeypatch, split)
    fit_run(tmp_path / "run", "sasrec", "synthetic", model_options={"d": 8}, train=TrainConfig(epochs=1))
    target = recprobe.load_target("sasrec", run=tmp_path / "run")
    check_probe_target(target, probe_batch(split, target.max_history))
    with pytest.raises(RecprobeError, match="holds a sasrec model, not bprmf; use the adapter 'sasrec'"):
        recprobe.load_target("bprmf", run=tmp_path / "run")


def test_unknown_adapter_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown adapter 'nope'; choose one of: bprmf, lightgcn, recbole"):
        recprobe.load_target("nope")
    with pytest.raises(KeyError):
        recprobe.load_target("nope")


def test_unknown_adapter_option_is_refused(tmp_path):
    with pytest.raises(ValueError, match="epochs"):
        recprobe.load_target("sasrec", run=tmp_path, epochs=3)


def test_every_adapter_is_listed_with_its_package():
    listed = recprobe.adapters()
    assert set(listed) == {*MODELS, "recbole", "torch"}
    assert {(e.package, e.version) for e in listed.values()} == {("recprobe", recprobe.__version__)}


class _Toy:
    """A plugin object as a third party would write it, registered by hand (no installed package)."""

    @hookimpl
    def register_adapters(self, register):
        register(Adapter("toy", "a toy", AdapterOptions, lambda options: "built"))


def test_hook_register_adapters():
    pm = plugin_manager()
    pm.register(_Toy(), name="toy-plugin")
    found = collect_adapters(pm)
    assert found["toy"].package == "toy-plugin" and found["toy"].adapter.load(None) == "built"
    assert found["sasrec"].package == "recprobe"


def test_two_plugins_registering_one_name_is_an_error():
    class Clash:
        @hookimpl
        def register_adapters(self, register):
            register(Adapter("sasrec", "another", AdapterOptions, lambda options: None))

    pm = plugin_manager()
    pm.register(Clash(), name="clash")
    with pytest.raises(RecprobeError, match="'sasrec' is registered by both"):
        collect_adapters(pm)


BROKEN_PLUGINS = {  # entry-point name -> the module it points at
    "broken": "raise ImportError('No module named fancy_dependency')",
    "exits": "raise SystemExit(3)",
    "stringy": "from recprobe.hookspecs import hookimpl\n\n@hookimpl\ndef register_adapters(register):\n"
               "    register('not an adapter')\n",
    "raises": "from recprobe.hookspecs import hookimpl\n\n@hookimpl\ndef register_adapters(register):\n"
              "    raise RuntimeError('hook broke')\n",
}


def installed_broken_plugins(folder):
    """Four installed distributions (dist-info with entry points, as pip writes them) whose plugins are broken."""
    folder.mkdir()
    for name, code in BROKEN_PLUGINS.items():
        (folder / f"recprobe_{name}.py").write_text(code + "\n")
        info = folder / f"recprobe_{name}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: recprobe-{name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[recprobe]\n{name} = recprobe_{name}\n")
    return folder


def test_broken_plugins_are_left_out_with_one_warning_each_and_every_command_works(split, tmp_path, monkeypatch):
    """A plugin that fails to import (or exits), whose hook raises or registers a string: `recprobe evaluate` on a
    built-in run still works, and says once which plugin was left out and why."""
    use_synthetic(monkeypatch, split)
    fit_run(tmp_path / "run", "bprmf", "synthetic", model_options={"d": 8}, train=TrainConfig(epochs=1), progress=False)
    site = installed_broken_plugins(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.pop("RECPROBE_LOAD_PLUGINS", None)  # every installed plugin
    done = subprocess.run([sys.executable, "-m", "recprobe.cli", "evaluate", "--run", str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "HR@10" in done.stdout, done.stderr[-2000:]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 4 and "Traceback" not in done.stderr, done.stderr
    text = " ".join(warnings)
    assert "the plugin 'broken' (package recprobe-broken) failed to import and is left out: ImportError: No module " \
           "named fancy_dependency" in text
    assert "the plugin 'exits' (package recprobe-exits) failed to import and is left out: SystemExit: 3" in text
    assert "the plugin recprobe-stringy's register_adapters hook failed and is left out: TypeError: register() takes " \
           "a recprobe.adapters.Adapter, got str" in text
    assert "the plugin recprobe-raises's register_adapters hook failed and is left out: RuntimeError: hook broke" in text


def test_an_adapter_that_returns_no_target_is_one_error_naming_it():
    class Nothing:
        @hookimpl
        def register_adapters(self, register):
            register(Adapter("nothing", "returns None", AdapterOptions, lambda options: None))
            register(Adapter("crashes", "raises", AdapterOptions, lambda options: 1 / 0))

    pm = plugin_manager()
    pm.register(Nothing(), name="nothing-plugin")
    found = collect_adapters(pm)
    with pytest.raises(RecprobeError, match=r"the adapter 'nothing' \(nothing-plugin\) returned NoneType None, not a "
                                            r"ProbeTarget"):
        open_target(found["nothing"], {})
    with pytest.raises(RecprobeError, match=r"the adapter 'crashes' \(nothing-plugin\) failed to load its target: "
                                            r"ZeroDivisionError: division by zero"):
        open_target(found["crashes"], {})


def test_an_adapter_that_takes_the_split_is_built_for_the_one_given_and_asks_for_one_when_none_is(split):
    class Sized:
        @hookimpl
        def register_adapters(self, register):
            register(Adapter("sized", "sized by the data", AdapterOptions,
                             lambda options, split: build_model("bprmf", split, seed=0, d=8), takes_split=True))

    pm = plugin_manager()
    pm.register(Sized(), name="sized-plugin")
    sized = collect_adapters(pm)["sized"]
    target = open_target(sized, {}, split)
    assert target.n_items == split.n_items and target.n_users == split.n_users
    with pytest.raises(RecprobeError, match=r"^the adapter 'sized' builds its target for a dataset: pass the split, "
                                            r"recprobe.load_target\('sized', split=recprobe.load_dataset\(...\), ...\)$"):
        open_target(sized, {})


def test_every_hook_is_documented_under_its_exact_signature():
    import inspect
    from pathlib import Path

    from recprobe import hookspecs

    page = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, "recprobe_spec"):
            assert f"def {name}{inspect.signature(fn)}".replace("'", "") in page, name
            assert f"test_hook_{name}" in globals(), name


# -- check_probe_target catches each broken rule ---------------------------------------------------------


class _Broken:
    name, d_model, n_items, max_history = "broken", 4, 10, 0

    def __init__(self, **breaks):
        self.breaks = breaks
        self.items = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))

    def represent(self, batch):
        reps = torch.ones(len(batch), 4) * batch.users[:, None]
        return reps + torch.rand(reps.shape) if self.breaks.get("random") else reps

    def score(self, reps, batch):
        if self.breaks.get("ignores_reps"):
            reps = self.represent(batch)
        return reps @ self.items.T

    def predict(self, batch):
        return self.score(self.represent(batch), batch) + (1.0 if self.breaks.get("differs") else 0.0)

    def item_embeddings(self):
        return self.items[:3] if self.breaks.get("short_items") else self.items


@pytest.mark.parametrize(("breaks", "message"), [
    ({"random": True}, "differs between two calls"),
    ({"ignores_reps": True}, "leaves score() unchanged"),
    ({"differs": True}, "differs from the model's own predict"),
    ({"short_items": True}, "item_embeddings() must be None or"),
])
def test_check_probe_target_names_the_broken_rule(split, breaks, message):
    batch = probe_batch(split, 0)
    check_probe_target(_Broken(), batch)
    with pytest.raises(ProbeTargetCheckError, match="broken breaks") as e:
        check_probe_target(_Broken(**breaks), batch)
    assert message in str(e.value)


# -- torch wrap ------------------------------------------------------------------------------------------


class _GRURec(nn.Module):
    def __init__(self, n_items: int, d: int = 8):
        super().__init__()
        self.items = nn.Embedding(n_items + 1, d, padding_idx=n_items)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.out = nn.Linear(d, d)

    def forward(self, history, lengths):
        states = self.out(self.gru(self.items(history))[0])
        user = states[torch.arange(len(history)), lengths - 1]
        return user @ self.items.weight[:-1].T


def _wrap(split, site="out", **options):
    model = _GRURec(split.n_items).eval()
    options = {"n_items": split.n_items, "d_model": 8, "max_history": 5, "position": recprobe.LastValid(),
               "forward": lambda m, b: m(b.history, b.lengths), **options}
    return recprobe.wrap(model, site, **options)


def test_wrapped_torch_model_keeps_the_rules(split):
    target = _wrap(split, item_embeddings=None)
    check_probe_target(target, probe_batch(split, 5))
    assert target.name == "torch:_GRURec.out"


def test_wrap_a_wrong_site_lists_the_module_paths(split):
    with pytest.raises(RecprobeError, match=r"no module 'outt'. Did you mean 'out'\? Module paths: items, gru, out"):
        _wrap(split, site="outt")


def test_wrap_a_site_that_is_not_one_vector_per_user(split):
    target = _wrap(split, position=None)
    with pytest.raises(RecprobeError, match=r"is \(16, 5, 8\), but a ProbeTarget needs \[B, d_model\] = \(16, 8\)"):
        target.represent(probe_batch(split, 5))


def test_wrap_leaves_no_hook_behind(split):
    """Hooks live only for the call that needs them: afterwards the bare model computes what it did before."""
    target = _wrap(split)
    batch = probe_batch(split, 5)
    before = target.model(batch.history, batch.lengths)
    target.score(target.represent(batch) * 3, batch)
    assert not target.module._forward_hooks
    assert torch.equal(target.model(batch.history, batch.lengths), before)
