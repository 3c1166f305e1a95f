"""Run folders: one recommender (any ProbeTarget) on one split, and every stage made from it.

    run.py         Run: create (records adapter, options, dataset, versions, fingerprints) and open
    layout.py      every path of a run folder
    lock.py        one writer per run folder
    provenance.py  content hashes; stale or foreign inputs refused with the command that rebuilds them
    align.py       a target's own user/item numbering mapped onto the split's by raw token
    fit.py         `recprobe fit`: train a built-in model into a run
    capture.py, sae.py, interpret.py, steering.py: the stages after the recommender
"""

from recprobe.runs.fit import fit_run
from recprobe.runs.run import Run, open_run

__all__ = ["Run", "fit_run", "open_run"]
