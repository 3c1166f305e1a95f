"""Keep third-party chatter out of recprobe's console: the progress bars, advisory logs and deprecation warnings
that transformers, huggingface_hub, datasets, tqdm and torch print while a model loads. ``recprobe --verbose``
lets them through."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

ENVIRONMENT = {  # read by the libraries when they start, or at each bar they would draw
    "TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}
LOGGERS = ("transformers", "huggingface_hub", "datasets", "accelerate", "outlines", "sentence_transformers")
WARNING_MODULES = r"(torch|transformers|huggingface_hub|datasets|accelerate|outlines|gguf|sentence_transformers)(\.|$)"


@contextmanager
def third_party_quiet() -> Iterator[None]:
    """While inside: no third-party progress bar, log below error, or warning raised from those libraries."""
    saved_env = {key: os.environ.get(key) for key in ENVIRONMENT}
    os.environ.update(ENVIRONMENT)
    loggers = {name: logging.getLogger(name) for name in LOGGERS}
    saved_levels = {name: logger.level for name, logger in loggers.items()}
    for logger in loggers.values():
        logger.setLevel(logging.ERROR)
    bars = _library_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=WARNING_MODULES)
            yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, logger in loggers.items():
            logger.setLevel(saved_levels[name])
        for enable in bars:
            enable()


def _library_bars() -> list:
    """Turn off the progress bars of the libraries already imported (those imported later read ENVIRONMENT);
    returns the calls that turn them back on."""
    restore = []
    if "tqdm" in sys.modules:  # tqdm read TQDM_DISABLE when it was imported; its bars are silenced here
        import tqdm.std

        original = tqdm.std.tqdm.__init__

        def silent(self, *args, **kwargs) -> None:
            original(self, *args, **{**kwargs, "disable": True})

        tqdm.std.tqdm.__init__ = silent
        restore.append(lambda: setattr(tqdm.std.tqdm, "__init__", original))
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        if transformers_logging.is_progress_bar_enabled():
            transformers_logging.disable_progress_bar()
            restore.append(transformers_logging.enable_progress_bar)
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        if not are_progress_bars_disabled():
            disable_progress_bars()
            restore.append(enable_progress_bars)
    return restore
