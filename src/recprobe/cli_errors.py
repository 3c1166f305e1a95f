"""The CLI's one error boundary: every expected failure becomes one plain-text line naming the thing and the fix.

Library errors (``RecprobeError``) already say what, where and how to fix; this module adds the failures that
reach the CLI from the system or from the libraries beneath (files, disk, permissions, bad config values, the
Hub). Anything else is a bug and keeps its traceback. Only ``recprobe.cli`` imports this module.
"""

from __future__ import annotations

import errno

from pydantic import ValidationError

from recprobe.errors import RecprobeError

try:  # the click that typer parses with: its own copy in recent typer, click itself before
    from typer._click.exceptions import ClickException
except ImportError:
    from click.exceptions import ClickException

INTERRUPTED = ("interrupted; nothing already finished was lost: rerun the same command to go on (train-sae resumes "
               "from its checkpoint, interpret skips the latents it finished)")


def user_message(error: BaseException) -> str | None:
    """The one line to show for an expected failure ("" when there is nothing to add), or None for a bug (which
    keeps its traceback)."""
    if isinstance(error, RecprobeError):
        return str(error)
    if isinstance(error, ClickException):  # a mistyped command or option, in click's words
        if type(error).__name__ == "NoArgsIsHelpError":  # no arguments: click printed the help already
            return ""
        ctx = getattr(error, "ctx", None)
        text = error.format_message().rstrip(".")
        if ctx is None:
            return text
        return (f"{text} See" if text.endswith("?") else f"{text}; see") + f" `{ctx.command_path} --help`"
    if isinstance(error, ValidationError):
        return validation_message(error)
    if isinstance(error, OSError):
        return os_message(error)
    if type(error).__name__ == "SafetensorError":
        return safetensors_message(error)
    return None


def validation_message(error: ValidationError) -> str:
    """A stage option's error names its flag (``--level-mode: ...``); another model's, the model and field."""
    from recprobe.runs.options import option_flag

    first = error.errors()[0]
    flag = option_flag(error.title, str(first["loc"][0])) if first["loc"] else None
    if flag is not None:
        return f"{flag}: {first['msg'].removeprefix('Value error, ')} (got {first.get('input')!r})"
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid {error.title} option {where!r}: {first['msg']} (got {first.get('input')!r})"


def os_message(error: OSError) -> str:
    path = error.filename or "a file"
    if error.errno == errno.ENOSPC:
        return (f"no space left on the device while writing {path}; free some space and rerun the command "
                "(what was already written is unchanged)")
    if error.errno == errno.EROFS or isinstance(error, PermissionError):
        return f"{path}: permission denied; make it writable (or readable) for you, or choose another folder"
    if isinstance(error, IsADirectoryError):
        return f"{path} is a folder, but a file is needed there; give the file's path"
    if isinstance(error, NotADirectoryError):
        return f"{path}: a part of this path is a file, not a folder; check the path"
    if isinstance(error, FileNotFoundError):
        return f"{path} does not exist; check the path"
    return f"{path}: {error.strerror or error}; check the path and the disk"


def safetensors_message(error: BaseException) -> str:
    text = str(error)
    if "StorageFull" in text or "No space left" in text:
        return "no space left on the device while writing a safetensors file; free some space and rerun the command"
    return f"a safetensors file could not be read or written ({text}); rerun the stage that writes it"
