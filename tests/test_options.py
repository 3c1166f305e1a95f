"""Each stage's options model is where its CLI flags take their help and defaults from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recprobe.cli import click_command
from recprobe.cli_errors import validation_message
from recprobe.data import DataSource
from recprobe.errors import ConfigError
from recprobe.runs.options import CaptureOptions, DebiasOptions, InterpretOptions, SweepOptions, stage_options


@pytest.mark.parametrize(("command", "model"), [("capture", CaptureOptions), ("interpret", InterpretOptions),
                                                 ("debias", DebiasOptions), ("fit", DataSource), ("probe", DataSource),
                                                 ("export", DataSource)])
def test_every_field_is_a_flag_with_the_models_help_and_default(command, model):
    params = {p.opts[0]: p for p in click_command.commands[command].params}
    for name, field in model.model_fields.items():
        flag = model.flag(name) if hasattr(model, "flag") else "--" + name.replace("_", "-")
        assert flag in params, (command, flag)
        if name == "min_rating" or (command, name) == ("export", "dataset"):
            continue  # "keep all" is a negative number on the command line; export takes --dataset or --run
        if (command, name) == ("debias", "n_latents"):  # one --latents for both modes: both descriptions
            assert params[flag].help.startswith(field.description) and params[flag].default is None
            continue
        assert params[flag].help == field.description, (command, flag)
        default = params[flag].default
        if name == "parts":
            default = tuple(default.split(","))
        if not field.is_required():
            assert default == field.default, (command, flag)


def test_the_sweeps_options_are_the_debias_commands_flags_with_sweep():
    params = {p.opts[0]: p for p in click_command.commands["debias"].params}
    for name, field in SweepOptions.model_fields.items():
        if name != "seeds":  # the command line keeps the default 3 draws
            assert SweepOptions.flag(name) in params and field.description in params[SweepOptions.flag(name)].help
    assert SweepOptions(strengths=(2.0, 0.0, 2.0)).strengths == (0.0, 2.0)  # sorted, once each


def test_a_refused_option_names_its_flag():
    with pytest.raises(ValidationError) as refused:
        CaptureOptions(parts=("train", "valid"))
    assert validation_message(refused.value) == "--splits: Input should be 'train', 'dev' or 'test' (got 'valid')"
    with pytest.raises(ValidationError) as refused:
        InterpretOptions(n=4, top_cases=7)
    assert validation_message(refused.value) == ("--top-cases: at least 2N = 8 (a latent's construction and "
                                                 "verification cases) are kept (got 7)")
    assert InterpretOptions(n=4, top_cases=8).case_budget.top == 8
    assert InterpretOptions(n=40).case_budget.top == 80  # 2N past the default 64


def test_a_stage_takes_its_options_or_their_fields_not_both():
    assert stage_options(CaptureOptions, None, {"positions": "last"}) == CaptureOptions(positions="last")
    given = CaptureOptions(batch_size=8)
    assert stage_options(CaptureOptions, given, {}) is given
    with pytest.raises(ConfigError, match="give CaptureOptions or its fields by name, not both"):
        stage_options(CaptureOptions, given, {"positions": "last"})
