"""Batched against one-at-a-time verification with the embedded model, on the same prompts.

    python benchmarks/llm_batching.py [--llm smollm2] [--prompts 16] [--repeats 3]

Builds verification prompts from MovieLens-style cases, then times ``generate`` on all of them at once (Outlines
batches them through one compiled generator) and one call per prompt. Prints medians and the ratio, and checks
that both give the same levels.
"""

from __future__ import annotations

import argparse
import statistics
import time

from recprobe.concepts.llm import load_llm
from recprobe.concepts.prompts import load_prompts
from recprobe.concepts.schemas import LevelPrediction

ITEMS = ["Scream (1996) [genre: Horror]", "Toy Story (1995) [genre: Animation, Children's]",
         "Heat (1995) [genre: Action, Crime]", "Sense and Sensibility (1995) [genre: Drama, Romance]"]
THEMES = ["horror movies", "animated family films", "crime thrillers", "period romances"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    llm, prompts = load_llm(args.llm), load_prompts()
    conversations = [prompts.verify_messages(THEMES[i % 4], f"History:\n- {ITEMS[(i // 4) % 4]}\n"
                                             f"Predicted next: {ITEMS[(i + 1) % 4]}") for i in range(args.prompts)]
    llm.generate(conversations[:2], LevelPrediction, 12)  # compile the generator once, outside the timings
    batched, single = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        together = llm.generate(conversations, LevelPrediction, 12)
        batched.append(time.perf_counter() - started)
        started = time.perf_counter()
        apart = [llm.generate([c], LevelPrediction, 12)[0] for c in conversations]
        single.append(time.perf_counter() - started)
    same = sum(a == b for a, b in zip(together, apart, strict=True))
    print(f"{args.llm}: {args.prompts} verification prompts, {args.repeats} repeats")
    print(f"batched       {statistics.median(batched):7.2f} s (median)")
    print(f"one at a time {statistics.median(single):7.2f} s (median)")
    print(f"speed-up {statistics.median(single) / statistics.median(batched):.1f}x; same level for {same}/{len(apart)}; "
          f"schema-valid: {sum(a is not None for a in together)}/{len(together)}")


if __name__ == "__main__":
    main()
