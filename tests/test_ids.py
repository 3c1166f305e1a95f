"""Any id scheme through ``item_tokens`` / ``user_tokens`` (padding ids, ids from 1, a sub-catalog), the
wrappers that get ids wrong (off by one, scores of another width), and general targets that read histories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import recprobe
from recprobe.errors import IdMismatchError, RecprobeError, RunFolderError
from recprobe.runs import Run
from recprobe.runs.align import AlignedTarget, align
from recprobe.target import Batch, is_sequential
from tests.conftest import probe_batch
from tests.targets import Oracle


class FromOne(nn.Module):
    """The Oracle as many models outside recprobe are written: users and items numbered from 1, row and
    score column 0 for padding."""

    def __init__(self, split):
        super().__init__()
        table = Oracle(split).table.detach()
        self.users = nn.Parameter(torch.cat([torch.zeros(1, split.n_items), table]))  # row 0: padding user
        self.items = nn.Parameter(torch.cat([torch.zeros(1, split.n_items), torch.eye(split.n_items)]))  # row 0: pad
        self.tower = nn.Identity()

    def forward(self, users, history):
        return self.tower(self.users[users]) @ self.items.T  # [B, n_items + 1], column 0 the padding item


def from_one(split, **options):
    model = FromOne(split)
    return recprobe.wrap(model, site="tower", d_model=split.n_items, forward=lambda m, b: m(b.users, b.history), **options)


def test_ids_from_one_with_a_padding_row_need_no_translation_by_hand(split, tmp_path):
    target = from_one(split, item_tokens=[None, *split.item_ids], user_tokens=[None, *split.user_ids])
    assert target.n_items == split.n_items + 1
    run = Run.create(tmp_path / "run", target, split)
    batch = probe_batch(split, 0, n=split.n_users)
    scores = run.target.predict(batch)
    assert scores.shape == (split.n_users, split.n_items)
    assert (scores.argmax(1).numpy() == split.test_items).all()  # the Oracle's held-out items, in the split's ids
    assert run.record["ranking_check"]["HR@10"] == 1.0


def test_a_history_goes_to_the_model_in_its_ids_with_its_padding_and_without_items_it_does_not_know(split):
    inner = Oracle(split)
    n = split.n_items
    target = AlignedTarget(inner, np.r_[np.arange(1, n - 1) + 0, -1, -1].astype(np.int64), None, pad=0)
    batch = Batch(torch.tensor([0, 1]), torch.tensor([[0, n - 1, 3, n], [n - 2, n, n, n]]), torch.tensor([3, 1]))
    seen = target._batch(batch)
    assert seen.history.tolist() == [[1, 4, 0, 0], [0, 0, 0, 0]] and seen.lengths.tolist() == [2, 1]
    scores = target.predict(probe_batch(split, 0))
    assert (scores[:, -2:] == torch.finfo(scores.dtype).min).all()  # unknown: below every score, never recommended
    assert (scores[:, :-2] > torch.finfo(scores.dtype).min).all()


def test_a_model_of_part_of_the_catalog_is_probed_and_never_recommends_the_rest(split, tmp_path):
    tokens = [None, *split.item_ids[:-3], None, None, None]  # three items it never learned: padding rows
    run = Run.create(tmp_path / "run", from_one(split, item_tokens=tokens, user_tokens=[None, *split.user_ids]), split,
                     untrained_ok=True)
    top = run.target.predict(probe_batch(split, 0, n=split.n_users)).topk(split.n_items - 3).indices
    assert top.max() < split.n_items - 3


def test_an_off_by_one_wrapper_is_refused_saying_so(split, tmp_path):
    model = FromOne(split)
    wrong = recprobe.wrap(model, site="tower", d_model=split.n_items, n_items=split.n_items,
                          forward=lambda m, b: m(b.users + 1, b.history)[:, :-1])  # drops the wrong column
    with pytest.raises(RunFolderError, match=r"ranks the synthetic split's held-out items better with its item ids "
                                             r"shifted by -1 \(HR@10 1.0000 against 0.\d+ as given.*likely off by one"):
        Run.create(tmp_path / "run", wrong, split)
    assert not (tmp_path / "run").exists()
    right = recprobe.wrap(model, site="tower", d_model=split.n_items, n_items=split.n_items,
                          forward=lambda m, b: m(b.users + 1, b.history)[:, 1:])
    check = Run.create(tmp_path / "right", right, split).record["ranking_check"]
    assert check["HR@10"] == 1.0 and check["HR@10 ids shifted -1"] < 0.5 and check["HR@10 ids shifted +1"] < 0.5


HISTORY = 4


class BagMemory(nn.Module):
    """A sequential model in ids from 1 (0 pads histories) that remembers which item followed which history: it
    scores an item by how much the user's history overlaps the test-time histories it was the next item of."""

    def __init__(self, split):
        super().__init__()
        n = split.n_items
        batch = probe_batch(split, HISTORY, n=split.n_users)
        bags = self.bag(torch.where(batch.history == n, 0, batch.history + 1), n + 1)
        self.memory = bags.T @ torch.eye(n + 1)[torch.from_numpy(split.test_items) + 1]  # [n + 1, n + 1]
        self.tower = nn.Identity()

    @staticmethod
    def bag(history, width):
        bags = torch.eye(width)[history].sum(1)
        bags[:, 0] = 0  # the padding id
        return bags

    def forward(self, history):
        return self.tower(self.bag(history, len(self.memory))) @ self.memory  # [B, n_items + 1], column 0 padding


def test_a_wrapper_feeding_histories_or_users_one_off_is_refused_saying_which(split, tmp_path):
    n = split.n_items
    model = BagMemory(split)
    right = recprobe.wrap(model, site="tower", d_model=n + 1, max_history=HISTORY, item_tokens=[None, *split.item_ids],
                          forward=lambda m, b: m(b.history))
    check = Run.create(tmp_path / "right", right, split).record["ranking_check"]
    assert check["HR@10"] > 0.9 and check["HR@10 history ids shifted +1"] < 0.5 > check["HR@10 history ids shifted -1"]
    unshifted = recprobe.wrap(model, site="tower", d_model=n + 1, max_history=HISTORY, n_items=n,  # forgets the + 1
                              forward=lambda m, b: m(torch.where(b.history == n, 0, b.history))[:, 1:])
    with pytest.raises(RunFolderError, match=r"better with the item ids of the histories it reads shifted by \+1 "
                                             r"\(HR@10 (1.0000|0.9\d+) against 0.\d+ as given.*give item_tokens"):
        Run.create(tmp_path / "unshifted", unshifted, split)
    users_from_zero = recprobe.wrap(FromOne(split), site="tower", d_model=n, n_items=n,  # forgets the users' + 1
                                    forward=lambda m, b: m(b.users, b.history)[:, 1:])
    with pytest.raises(RunFolderError, match=r"better with the user ids it reads shifted by \+1 \(HR@10 (1.0000|0.9\d+) .*"
                                             r"give user_tokens"):
        Run.create(tmp_path / "users", users_from_zero, split)
    assert not (tmp_path / "unshifted").exists() and not (tmp_path / "users").exists()


def test_a_held_out_item_a_shifted_input_cannot_score_is_a_miss_not_an_error():
    from recprobe.testing import hit_at_k

    scores = torch.arange(30.0).repeat(3, 1)  # item 29 first, item 0 last
    scores[1] = float("nan")  # a history emptied by the shift
    scores[2, 29] = -torch.inf  # the target masks the held-out item itself
    assert hit_at_k(scores, torch.tensor([29, 29, 29]), None).tolist() == [True, False, False]


def test_the_target_check_maps_declared_tokens_as_a_run_does(split):
    from recprobe.testing import ProbeTargetCheckError, check_probe_target

    target = from_one(split, item_tokens=[None, *split.item_ids], user_tokens=[None, *split.user_ids])
    check_probe_target(target, probe_batch(split, 0), split=split)  # a padding column, declared: no complaint
    wrong = recprobe.wrap(FromOne(split), site="tower", d_model=split.n_items, n_items=split.n_items,
                          forward=lambda m, b: m(b.users + 1, b.history)[:, :-1])
    with pytest.raises(ProbeTargetCheckError, match="better with its item ids shifted by -1"):
        check_probe_target(wrong, probe_batch(split, 0), split=split)


def test_a_target_whose_representation_stages_cannot_read_is_refused_before_anything_is_written(split, tmp_path):
    n = split.n_items
    narrow = recprobe.wrap(FromOne(split), site="tower", d_model=n - 1, item_tokens=[None, *split.item_ids],
                           user_tokens=[None, *split.user_ids], forward=lambda m, b: m(b.users, b.history))
    with pytest.raises(RecprobeError, match=rf"is \(\d+, {n}\), but a ProbeTarget needs \[B, d_model\] = \(\d+, {n - 1}\)"):
        Run.create(tmp_path / "narrow", narrow, split)
    unmapped = recprobe.wrap(BagMemory(split), site="tower", d_model=n + 1, max_history=100, n_items=n,  # padded
                             forward=lambda m, b: m(b.history + 1)[:, 1:])  # the split's padding id n -> n + 1
    with pytest.raises(IdMismatchError, match=rf"failed on a batch of the synthetic split \(IndexError: .*padded at the "
                                              rf"end with {n}\. A model numbering them its own way .* declares item_tokens"):
        Run.create(tmp_path / "unmapped", unmapped, split)
    assert not (tmp_path / "narrow").exists() and not (tmp_path / "unmapped").exists()


def test_reopening_with_a_wrapper_that_declares_another_window_is_refused(split, tmp_path):
    from recprobe.errors import StaleArtifactError

    model = BagMemory(split)

    def wrapped(window):
        return recprobe.wrap(model, site="tower", d_model=split.n_items + 1, max_history=window,
                             item_tokens=[None, *split.item_ids], forward=lambda m, b: m(b.history))

    run = Run.create(tmp_path / "run", wrapped(HISTORY), split)
    assert Run.open(run.root, target=wrapped(HISTORY)).fingerprint == run.fingerprint  # same weights, same wrapper
    assert Run.open(run.root, target=run.target).fingerprint == run.fingerprint  # its own, mapped target too
    with pytest.raises(StaleArtifactError, match=rf"has changed since the run was created \(max_history {HISTORY} -> "
                                                 rf"now {HISTORY - 1}\); recreate the run"):
        Run.open(run.root, target=wrapped(HISTORY - 1))


def test_scores_of_another_width_name_both_widths_and_the_padding_column(split, tmp_path):
    model = FromOne(split)
    padded = recprobe.wrap(model, site="tower", d_model=split.n_items, n_items=split.n_items,
                           forward=lambda m, b: m(b.users + 1, b.history))
    with pytest.raises(IdMismatchError, match=rf"returns scores with {split.n_items + 1} columns, but it declares "
                                              rf"{split.n_items} items \(n_items\). One column more: a padding id"):
        Run.create(tmp_path / "run", padded, split)
    declared = recprobe.wrap(model, site="tower", d_model=split.n_items, n_items=split.n_items + 1,
                             forward=lambda m, b: m(b.users + 1, b.history))
    with pytest.raises(IdMismatchError, match=r"One more than the split: a padding id .* Give item_tokens with None"):
        align(declared, split)
    with pytest.raises(IdMismatchError, match=r"declares n_items=5 but \d+ item_tokens"):
        align(from_one(split, n_items=5, item_tokens=[None, *split.item_ids]), split)


class Pooling(nn.Module):
    """A general model that reads histories as a bag: the Oracle's user row plus the mean of its history."""

    def __init__(self, split):
        super().__init__()
        self.table = Oracle(split).table.detach()
        self.tower = nn.Identity()
        self.read: list[int] = []

    def forward(self, users, history, lengths):
        self.read.append(history.shape[1])
        items = torch.eye(self.table.shape[1] + 1)[history].sum(1)[:, :-1] / lengths.clamp(min=1)[:, None]
        return self.tower(self.table[users] + 0.01 * items) @ torch.eye(self.table.shape[1])


def test_a_general_target_that_reads_histories_gets_them_whole_and_test_cases(split, tmp_path):
    from recprobe.runs.interpret import resolve_cases

    model = Pooling(split)
    target = recprobe.wrap(model, site="tower", d_model=split.n_items, n_items=split.n_items, max_history=2,
                           sequential=False, forward=lambda m, b: m(b.users, b.history, b.lengths))
    run = Run.create(tmp_path / "run", target, split)
    longest = int(np.diff(split.sequences("test")[0]).max())
    assert run.target.max_history == longest > 2 and max(model.read) == longest  # no window of 2
    run.capture(progress=False)
    run.train_sae(scale=1, k=2, epochs=1, progress=False)
    assert not is_sequential(run.target) and resolve_cases(run, "auto", 5) == "test"  # the declared kind decides
    sequential = recprobe.wrap(model, site="tower", d_model=split.n_items, n_items=split.n_items, max_history=2,
                               forward=lambda m, b: m(b.users, b.history, b.lengths))
    assert align(sequential, split).max_history == 2 and is_sequential(align(sequential, split))


def test_tokens_that_cannot_number_the_model_are_refused_before_anything_is_written(split, tmp_path):
    """A raw id given twice (one of its items could never be scored) and more tokens than the model's tables have
    rows (an IndexError deep in torch, only for the users whose histories reach the last ids) are each one
    error naming the tokens."""
    ids = [*split.item_ids]
    with pytest.raises(IdMismatchError, match=rf"item_tokens name '{ids[0]}' twice \(its items 1 and {len(ids)}\)"):
        Run.create(tmp_path / "twice", from_one(split, item_tokens=[None, *ids[:-1], ids[0]],
                                                user_tokens=[None, *split.user_ids]), split)
    model = FromOne(split)
    with torch.no_grad():  # a model of 3 fewer users than its tokens declare
        model.users = nn.Parameter(model.users[:-3].clone())
    short = recprobe.wrap(model, site="tower", d_model=split.n_items, forward=lambda m, b: m(b.users, b.history),
                          item_tokens=[None, *ids], user_tokens=[None, *split.user_ids])
    with pytest.raises(IdMismatchError, match=rf"mapped through its tokens it was fed item ids 0..{len(ids)} from its "
                                              rf"{len(ids) + 1} item_tokens; user ids 0..{split.n_users} .* A table "
                                              r"with fewer rows than its tokens"):
        Run.create(tmp_path / "short", short, split)
    assert not (tmp_path / "twice").exists() and not (tmp_path / "short").exists()


def test_a_wrapped_target_is_refused_where_the_split_is_fed_to_it_and_run_target_is_named(split, tmp_path):
    """The object given to wrap() reads the split's batches as its own ids: explain() on it would name other items
    without a word. Functions that feed it the split refuse it; the run's target, in the split's ids, works."""
    from recprobe.sae import SAEConfig, TopKSAE
    from recprobe.steering.explain import explain

    target = from_one(split, item_tokens=[None, *split.item_ids], user_tokens=[None, *split.user_ids])
    run = Run.create(tmp_path / "run", target, split)
    sae = TopKSAE(SAEConfig(d_in=split.n_items, scale=1, k=4))
    with pytest.raises(IdMismatchError, match=r"declares item_tokens and user_tokens other than the split's ids: .* "
                                              r"Give run.target"):
        explain(target, sae, split, 0)
    assert explain(run.target, sae, split, 0).item == split.test_items[0]  # the Oracle's own top item
    users_only = from_one(split, n_items=split.n_items, user_tokens=[None, *split.user_ids])  # items as the split's
    users_only.forward = lambda m, b: m(b.users, b.history)[:, 1:]
    mapped = Run.create(tmp_path / "users", users_only, split).target
    with pytest.raises(IdMismatchError, match=r"declares user_tokens other than the split's ids"):
        explain(users_only, sae, split, 0)
    assert explain(mapped, sae, split, 0).item == split.test_items[0]
    same = from_one(split, item_tokens=list(split.item_ids), n_items=None)  # tokens that are the split's ids
    assert same.n_items == split.n_items
    explain(same, sae, split, 0)  # its own ids are the split's: nothing to refuse (a wrong column is no error here)


def test_a_score_or_batch_built_by_hand_wrongly_is_one_error(split, tmp_path):
    target = from_one(split, item_tokens=[None, *split.item_ids], user_tokens=[None, *split.user_ids])
    run = Run.create(tmp_path / "run", target, split)
    n, good = split.n_items, probe_batch(split, 0)
    cases = {"must be \\[B, L\\] integer item ids": Batch(good.users[:1], torch.tensor([[0.0, 1.0]]), good.lengths[:1]),
             "got torch.int64 \\(4,\\) for 4 users": Batch(good.users[:4], torch.arange(4), good.lengths[:4]),
             f"holds item ids from 0 to {n + 5}": Batch(good.users[:1], torch.tensor([[0, n + 5]]), good.lengths[:1]),
             "holds item ids from -1 to 0": Batch(good.users[:1], torch.tensor([[0, -1]]), good.lengths[:1]),
             "got torch.uint8 \\(1, 2\\)": Batch(good.users[:1], torch.tensor([[0, 1]], dtype=torch.uint8), good.lengths[:1]),
             "users must be \\[B\\] integer user ids, got torch.float32": Batch(good.users.float(), good.history, good.lengths),
             f"users are from 0 to {split.n_users + 2}": Batch(torch.tensor([0, split.n_users + 2]), good.history[:2],
                                                               good.lengths[:2])}
    for message, batch in cases.items():
        with pytest.raises(RecprobeError, match=message):
            run.target.predict(batch)
    empty = Batch(good.users, torch.empty(len(good), 0), good.lengths)  # torch.empty is float: no ids, no fault
    assert torch.equal(run.target.predict(empty), run.target.predict(good))
    flat = AlignedTarget(recprobe.wrap(FromOne(split), site="tower", d_model=n, forward=lambda m, b: m(b.users, b.history)[:, 0],
                                       item_tokens=[None, *split.item_ids]), np.arange(1, n + 1), None, pad=0)
    with pytest.raises(RecprobeError, match=r"scores must be \[users, items\], one row per user, got \(\d+,\)"):
        flat.predict(good)
