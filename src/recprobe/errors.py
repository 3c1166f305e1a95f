"""recprobe's errors. Library code raises these; only the CLI prints them.

Every message says what is wrong, where, and how to fix it.
"""


class RecprobeError(Exception):
    """Base class of every error recprobe raises on purpose."""


class DatasetNotFoundError(RecprobeError, FileNotFoundError):
    """A named dataset is not in any of the places recprobe looked."""


class DatasetFetchError(RecprobeError, OSError):
    """A named dataset could not be downloaded, or what came was not the published file."""


class DataFormatError(RecprobeError, ValueError):
    """A data file exists but its content is not what its format requires."""


class EmptySplitError(RecprobeError, ValueError):
    """Filtering left no users, items or interactions to train or evaluate on."""


class UnknownNameError(RecprobeError, KeyError):
    """A name (model, dataset, adapter...) that recprobe does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class RunFolderError(RecprobeError):
    """An output folder that already holds something else, or a run folder that is incomplete."""


def unknown_name(kind: str, name: str, known: list[str]) -> UnknownNameError:
    """An UnknownNameError listing the names that would have worked."""
    return UnknownNameError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(known))}")


class ConfigError(RecprobeError, ValueError):
    """Settings that cannot work together (e.g. an SAE width that does not match the activations)."""


class StaleArtifactError(RunFolderError):
    """An artifact made from other inputs than the run holds now (another model, SAE, activations or cases)."""


class IdMismatchError(RecprobeError):
    """A target whose users or items cannot be mapped onto the split's (another dataset, another filter)."""
