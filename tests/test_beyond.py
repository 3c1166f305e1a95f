"""Beyond-accuracy metrics: hand-computed answers on a tiny example, agreement with RecBole's own metric classes
on the same top-K lists, and the one-pass evaluation that reads ranks and top-K lists from the same scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recprobe.ranking.beyond import BeyondSums
from recprobe.ranking.metrics import (
    PopularityGroups,
    average_popularity,
    beyond_metrics,
    evaluate_ranking,
    gini_index,
    group_ndcg,
    item_coverage,
    share_groups,
    tail_share,
)

# Five items with 10, 6, 3, 1, 0 training interactions (20 in all; 20% of them is 4).
POPULARITY = np.array([10, 6, 3, 1, 0])
# Three users' top-2 lists.
TOP = np.array([[0, 1], [0, 2], [0, 3]])


def test_groups_cut_at_a_fifth_of_the_interactions():
    # most popular first: item 0 has 0 before it (< 4): head; item 1 has 10 before it: not head.
    # least popular first: item 4 brings the sum to 0, item 3 to 1, item 2 to 4 (<= 4): tail; item 1 to 10: not.
    assert share_groups(POPULARITY).tolist() == [0, 1, 2, 2, 2]
    # ties are broken by index; a crossing item is head: 5, 5, 5, 5 (20): item 0 (0 before) head, item 1 (5) not;
    # ascending 3, 2, 1, 0 by index reversed: item 3 brings 5 > 4: no tail
    assert share_groups(np.array([5, 5, 5, 5])).tolist() == [0, 1, 1, 1]
    with pytest.raises(ValueError, match="share"):
        share_groups(POPULARITY, share=0.5)


def test_gini_by_hand():
    # times recommended: item 0 three times, items 1, 2, 3 once, item 4 never -> sorted 0, 1, 1, 1, 3 (sum 6)
    # sum_i (2i - n - 1) c_i with n = 5: -4*0 - 2*1 + 0*1 + 2*1 + 4*3 = 12; Gini = 12 / (5 * 6) = 0.4
    assert gini_index(TOP, 5) == pytest.approx(0.4)
    assert gini_index(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)  # every item once: equal
    # one item recommended to everyone among 4: counts 0, 0, 0, 2 -> (3 * 2) / (4 * 2) = 0.75 = 1 - 1/n
    assert gini_index(np.array([[3], [3]]), 4) == pytest.approx(0.75)


def test_arp_coverage_tail_share_by_hand():
    # ARP: user 0 (10 + 6) / 2 = 8, user 1 (10 + 3) / 2 = 6.5, user 2 (10 + 1) / 2 = 5.5; mean 20 / 3
    assert average_popularity(TOP, POPULARITY) == pytest.approx(20 / 3)
    # coverage: items 0, 1, 2, 3 of 5
    assert item_coverage(TOP, 5) == pytest.approx(0.8)
    # tail (items 2, 3, 4): user 0 has 0 of 2, users 1 and 2 have 1 of 2 -> (0 + 0.5 + 0.5) / 3
    assert tail_share(TOP, share_groups(POPULARITY) == 2) == pytest.approx(1 / 3)


def test_group_ndcg_by_hand():
    # targets 1, 2, 4 at ranks 2, 2, 3 (K = 2: the last is missed): NDCG 1/log2(3), 1/log2(3), 0
    ranks, targets = np.array([2, 2, 3]), np.array([1, 2, 4])
    item_groups = share_groups(POPULARITY)[targets]  # mid, tail, tail
    found = group_ndcg(ranks, 2, item_groups, ("head", "mid", "tail"))
    assert found["head"] is None  # no test item is in the head
    assert found["mid"] == pytest.approx(1 / math.log2(3))
    assert found["tail"] == pytest.approx((1 / math.log2(3) + 0) / 2)


def test_bad_lists_are_refused_in_one_line():
    groups = PopularityGroups(POPULARITY, share_groups(POPULARITY), np.array([0, 1, 2]))
    ranks, targets, users = np.array([2, 2, 3]), np.array([1, 2, 4]), np.arange(3)
    with pytest.raises(ValueError, match="need top-10 lists; got top-2"):  # never silently measured at K = 2
        beyond_metrics(TOP, ranks, targets, users, groups)
    with pytest.raises(ValueError, match="ranks 2, targets 3"):
        beyond_metrics(TOP, ranks[:2], targets, users, groups, k=2)
    with pytest.raises(ValueError, match="item 7, outside the catalog's items 0..4"):
        gini_index(np.array([[0, 7]]), 5)
    with pytest.raises(ValueError, match=r"non-empty \[users, K\]"):
        item_coverage(np.zeros((0, 10), dtype=np.int64), 5)


def test_beyond_metrics_gathers_every_metric():
    groups = PopularityGroups(POPULARITY, share_groups(POPULARITY), np.array([0, 1, 2]))
    out = beyond_metrics(TOP, np.array([2, 2, 3]), np.array([1, 2, 4]), np.arange(3), groups, k=2)
    assert out["HR@2"] == pytest.approx(2 / 3)
    assert out["NDCG@2"] == pytest.approx(2 / math.log2(3) / 3)
    assert out["Gini@2"] == pytest.approx(0.4) and out["ARP@2"] == pytest.approx(20 / 3)
    assert out["Coverage@2"] == pytest.approx(0.8) and out["Tail@2"] == pytest.approx(1 / 3)
    assert out["NDCG@2 head"] is None and out["NDCG@2 tail"] == pytest.approx(0.5 / math.log2(3))
    # users 0, 1, 2 are heavy, medium, light: NDCG 1/log2(3), 1/log2(3), 0
    assert out["NDCG@2 heavy users"] == pytest.approx(1 / math.log2(3)) and out["NDCG@2 light users"] == 0.0


def test_running_sums_over_batches_equal_one_pass_over_every_user():
    """The sweep adds users a batch at a time (memory per item, not per user); the metrics are the same."""
    rng = np.random.default_rng(0)
    popularity = rng.integers(0, 50, size=40)
    groups = PopularityGroups(popularity, share_groups(popularity), rng.integers(0, 3, size=300))
    top = np.stack([rng.choice(40, 10, replace=False) for _ in range(300)])
    ranks, targets, users = rng.integers(1, 30, size=300), rng.integers(0, 40, size=300), np.arange(300)
    whole = beyond_metrics(top, ranks, targets, users, groups)
    sums = BeyondSums(groups)
    for part in np.array_split(np.arange(300), 7):
        sums.add(top[part], ranks[part], targets[part], users[part])
    assert sums.metrics() == pytest.approx(whole)
    assert sums.metrics() != pytest.approx(BeyondSums(groups).add(top[:150], ranks[:150], targets[:150], users[:150]).metrics())
    with pytest.raises(ValueError, match="of no users"):
        BeyondSums(groups).metrics()


class _Data:
    """The slice of RecBole's DataStruct its metrics read."""

    def __init__(self, values):
        self.values = values

    def get(self, key):
        return self.values[key]


@pytest.fixture
def recbole_metrics():
    pytest.importorskip("recbole", reason="RecBole is an extra: make recbole")
    from recprobe.adapters.recbole.shims import import_recbole

    import_recbole()
    from recbole.evaluator import metrics

    return metrics


def test_agrees_with_recbole_on_the_same_lists(recbole_metrics):
    rng = np.random.default_rng(0)
    n_items, n_users, k = 40, 60, 10
    popularity = rng.zipf(1.5, size=n_items).clip(max=500)  # >= 1: RecBole's counter has every item
    weights = popularity / popularity.sum()
    top = np.stack([rng.choice(n_items, size=k, replace=False, p=weights) for _ in range(n_users)])
    config = {"topk": [5, k], "metric_decimal_place": 12, "tail_ratio": 2}
    data = _Data({"rec.items": torch.from_numpy(top), "data.num_items": n_items,
                  "data.count_items": {i: int(c) for i, c in enumerate(popularity)}})

    expected = recbole_metrics.GiniIndex(config).calculate_metric(data)
    assert gini_index(top, n_items) == pytest.approx(expected[f"giniindex@{k}"], abs=1e-9)
    assert gini_index(top[:, :5], n_items) == pytest.approx(expected["giniindex@5"], abs=1e-9)
    expected = recbole_metrics.ItemCoverage(config).calculate_metric(data)
    assert item_coverage(top, n_items) == pytest.approx(expected[f"itemcoverage@{k}"], abs=1e-9)
    expected = recbole_metrics.AveragePopularity(config).calculate_metric(data)
    assert average_popularity(top, popularity) == pytest.approx(expected[f"averagepopularity@{k}"], abs=1e-9)
    expected = recbole_metrics.TailPercentage(config).calculate_metric(data)  # tail: at most 2 interactions
    assert tail_share(top, popularity <= 2) == pytest.approx(expected[f"tailpercentage@{k}"], abs=1e-9)
    assert 0 < expected[f"tailpercentage@{k}"] < 1  # the comparison saw both kinds of items


def test_evaluate_ranking_reads_ranks_and_lists_from_the_same_scores():
    rng = np.random.default_rng(1)
    n_users, n_items = 7, 20
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    targets = rng.integers(0, n_items, size=n_users)
    seen = [np.setdiff1d(rng.choice(n_items, size=3, replace=False), [t]) for t in targets]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in seen])]).astype(np.int64)
    exclusions = (offsets, np.concatenate(seen).astype(np.int64))
    popularity = rng.integers(0, 30, size=n_items)
    groups = PopularityGroups(popularity, share_groups(popularity), share_groups(rng.integers(1, 9, size=n_users)))
    out = evaluate_ranking(lambda users: torch.from_numpy(scores[users]).clone(), targets, exclusions, n_items,
                           batch_size=3, groups=groups)
    masked = scores.copy()
    for user, items in enumerate(seen):
        masked[user, items] = -np.inf
    top = np.argsort(-masked, axis=1, kind="stable")[:, :10]  # the slow, obvious reference
    ranks = (masked >= masked[np.arange(n_users), targets][:, None]).sum(1)
    reference = beyond_metrics(top, ranks, targets, np.arange(n_users), groups)
    assert {key: out[key] for key in reference} == pytest.approx(reference)
    with pytest.raises(ValueError, match="full ranking"):
        evaluate_ranking(lambda users: torch.zeros(len(users), n_items), targets, exclusions, n_items,
                         sampled=True, groups=groups)


def test_recprobe_evaluate_prints_them(capsys, tmp_path, monkeypatch):
    import json
    from pathlib import Path

    from tests.conftest import write_atomic
    from tests.test_cli import run_cli
    from tests.test_debias_sweep import skewed_frame

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the factory's module is importable from here
    toy, out = write_atomic(tmp_path / "toy", skewed_frame()), tmp_path / "run"
    code, _, err = run_cli(capsys, "probe", "--adapter", "torch", "--option", "factory=tests.targets:make_popularity_drive",
                           "--option", f"kwargs={json.dumps({'dataset': str(toy)})}", "--dataset", str(toy),
                           "--min-rating", "-1", "--core", "3", "--out", str(out), "--untrained-ok")
    assert code == 0, err
    code, text, err = run_cli(capsys, "evaluate", "--run", str(out))
    assert code == 0, err
    for key in ("Gini@10", "ARP@10", "Coverage@10", "Tail@10", "NDCG@10 head", "NDCG@10 tail", "NDCG@10 light users"):
        assert key in text, key
    code, text, err = run_cli(capsys, "evaluate", "--run", str(out), "--sampled")
    assert code == 0, err
    assert "Gini" not in text  # not defined on sampled rankings
