"""Share SAE folders through the Hugging Face Hub (extra ``hub``). Only the expected file names travel."""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path

from recprobe.errors import RecprobeError
from recprobe.sae.io import CONFIG, HUB_FILES, WEIGHTS, load_sae
from recprobe.sae.topk import TopKSAE


def _hub():
    try:
        import huggingface_hub
    except ImportError as e:
        raise RecprobeError(f"the Hub client is not installed ({e}); run `pip install 'recprobe[hub]'`") from e
    return huggingface_hub


def network_errors() -> tuple[type[BaseException], ...]:
    """What the Hub client's HTTP library raises when the Hub cannot be reached (no network, a wrong endpoint):
    httpx's or its fork httpx2's transport errors, requests' connection errors, and the socket's own
    (refused, reset)."""
    found: list[type[BaseException]] = [ConnectionError]
    for module, names in (("httpx", ("TransportError",)), ("httpx2", ("TransportError",)),
                          ("requests.exceptions", ("ConnectionError", "Timeout"))):
        with contextlib.suppress(ImportError):
            found += [getattr(importlib.import_module(module), name) for name in names]
    return tuple(found)


def from_pretrained(path_or_repo_id: str | Path, *, revision: str | None = None, endpoint: str | None = None,
                    cache_dir: str | Path | None = None, token: str | None = None) -> TopKSAE:
    """A local SAE folder, or a Hub model repo holding ``cfg.json`` and ``sae_weights.safetensors``."""
    path = Path(path_or_repo_id)
    if path.is_dir():
        return load_sae(path)[0]
    hub = _hub()
    try:
        files = [hub.hf_hub_download(str(path_or_repo_id), name, revision=revision, endpoint=endpoint,
                                     cache_dir=cache_dir, token=token) for name in (CONFIG, WEIGHTS)]
    except (hub.errors.HfHubHTTPError, hub.errors.LocalEntryNotFoundError, ValueError) as e:
        raise RecprobeError(
            f"{path_or_repo_id!r} is neither a local SAE folder nor a Hub repo with {CONFIG} and {WEIGHTS} ({e})"
        ) from e
    return load_sae(Path(files[0]).parent)[0]


def check_repo_id(repo_id: str) -> None:
    """Refuse what cannot name a Hub repo (``../../etc``), before anything is uploaded or exported."""
    _hub()
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise RecprobeError(f"{repo_id!r} is not a Hub repo id ({e}); give OWNER/NAME, e.g. you/ml100k-sasrec-sae") from None


def push_to_hub(folder: str | Path, repo_id: str, *, tables: dict[str, Path] | None = None, private: bool = False,
                endpoint: str | None = None, token: str | None = None,
                commit_message: str = "Upload TopK SAE trained with recprobe") -> str:
    """Upload an SAE folder (cfg.json, weights, metrics.json, README.md model card) to a Hub model repo, and
    ``tables`` (name -> Parquet file, e.g. the concepts export) under ``concepts/``; returns the commit URL."""
    hub = _hub()
    folder = Path(folder)
    load_sae(folder)  # refuse to publish a folder that does not load
    check_repo_id(repo_id)
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = hub.HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        operations = [hub.CommitOperationAdd(name, folder / name) for name in HUB_FILES if (folder / name).is_file()]
        operations += [hub.CommitOperationAdd(f"concepts/{name}.parquet", path) for name, path in (tables or {}).items()]
        return str(api.create_commit(repo_id, operations, commit_message=commit_message).commit_url)
    except OfflineModeIsEnabled:
        raise RecprobeError("the Hugging Face Hub client is in offline mode (HF_HUB_OFFLINE is set); unset it to push, "
                            "or copy the sae/ folder by hand") from None
    except HfHubHTTPError as e:
        raise RecprobeError(f"the Hub refused the upload to {repo_id!r} ({' '.join(str(e).split())}); check the repo id "
                            "and your token (huggingface-cli login or HF_TOKEN)") from None
    except network_errors() as e:
        raise RecprobeError(f"could not reach the Hugging Face Hub at {api.endpoint} to push {repo_id!r} "
                            f"({type(e).__name__}: {' '.join(str(e).split())}); check the network (or HF_ENDPOINT), "
                            "or copy the sae/ folder by hand") from None
