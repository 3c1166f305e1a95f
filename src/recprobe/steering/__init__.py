"""Steering: edit SAE latents and see what the model does with them.

- ``edit``: ``LatentEdit`` (scale, clamp or shift one latent) and ``steered`` (the representation it makes);
- ``steer``: steered top-k lists and the Hit@10 of a concept's items (paper Table 7), ``table7``: the same for
  every confident concept of every basis;
- ``debias``: latents that track popularity, and one de-biasing edit's top-10 report; ``sweep``: every
  de-biasing method (``methods``: SAE latents, random latents, re-rankers) over a range of strengths;
- ``effects``: what each latent does to every item's score; ``explain``: which latents made a recommendation.
"""

from recprobe.steering.edit import LatentEdit, dense_codes, latent_values, steered
from recprobe.steering.explain import Explanation, explain
from recprobe.steering.methods import Method, SweptBatch
from recprobe.steering.steer import steering_effect, top_items, user_top
from recprobe.steering.sweep import debias_sweep

__all__ = ["Explanation", "LatentEdit", "Method", "SweptBatch", "debias_sweep", "dense_codes", "explain",
           "latent_values", "steered", "steering_effect", "top_items", "user_top"]
