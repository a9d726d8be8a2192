"""d90 intervals and sanity refusals (issue 11): accuracy intervals in [0, 1] with their coverage,
the unreached upper end in words / null, and each refusal before the work it would waste."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.subspace import SubspaceModel, find_d90  # noqa: E402
from lowdim.subspace.summary import NOT_REACHED, accuracy_interval, d90_interval  # noqa: E402
from lowdim.subspace.tasks import Task, get_task  # noqa: E402


def wilson(k, n, z=1.959964):
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


@pytest.mark.parametrize("values", [[-0.306 + 0.58, 0.58], [0.99, 1.0], [0.0, 0.0], [1.0], [0.0], [0.5, 1.0, 0.0]])
@pytest.mark.parametrize("n_test", [None, 20, 10_000])
def test_accuracy_intervals_stay_inside_0_1(values, n_test):
    m, lo, hi = accuracy_interval(values, n_test)
    if n_test is None and len(values) == 1:
        assert math.isnan(lo) and math.isnan(hi)  # nothing to estimate from: no interval, not a made-up one
        return
    assert 0.0 <= lo <= hi <= 1.0


def test_one_seed_matches_wilson_and_covers():
    for k, n in ((90, 100), (980, 1000), (5, 50)):
        _, lo, hi = accuracy_interval([k / n], n)
        wl, wh = wilson(k, n)
        assert abs(lo - wl) < 0.02 and abs(hi - wh) < 0.02  # logit vs Wilson: close, not equal
    rng = np.random.default_rng(0)  # coverage of the one-seed interval: binomial test sets
    for p, n in ((0.9, 200), (0.98, 500), (0.6, 100)):
        k = rng.binomial(n, p, 1200)
        cover = np.mean([lo <= p <= hi for _, lo, hi in (accuracy_interval([x / n], n) for x in k)])
        assert 0.93 <= cover <= 0.975, (p, n, cover)


def test_seed_spread_coverage_three_seeds():
    # each seed's model has its own true accuracy pi_s; the estimand is their mean over seeds
    rng = np.random.default_rng(1)
    n, S, reps, hits = 2000, 3, 1500, 0
    mu = 0.88
    for _ in range(reps):
        pis = mu + 0.01 * rng.standard_normal(S)
        acc = rng.binomial(n, pis) / n
        _, lo, hi = accuracy_interval(acc, n)
        hits += lo <= mu <= hi
    assert hits / reps >= 0.93


def test_d90_interval_rule_and_unreached_upper_end():
    per_d = [{"d": 10, "ci_low": 0.1, "ci_high": 0.5}, {"d": 20, "ci_low": 0.6, "ci_high": 0.95},
             {"d": 40, "ci_low": 0.85, "ci_high": 0.97}, {"d": 80, "ci_low": 0.92, "ci_high": 0.99}]
    assert d90_interval(per_d, 40, 0.9, 0.9, 1) == (11, 80)  # 10 clearly fails, 80 clearly passes
    assert d90_interval(per_d[:3], 40, 0.9, 0.9, 1) == (11, None)  # none clearly passes: not reached
    assert d90_interval(per_d, 40, 0.9, 0.93, 1) == (11, None)  # relative rule: the threshold's upper end
    assert d90_interval(per_d, None, 0.9, 0.9, 1) == (None, None)


# a task whose accuracy is known in closed form: acc(d) = min(1, d / 50) for subspace models
class W(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(100))


def model_fn(seed):
    return W()


def make_task(base_acc=0.95, chance=0.1, n_test=1000, calls=None):
    def train_fn(model, *, lr, seed):
        if calls is not None:
            calls.append("subspace" if isinstance(model, SubspaceModel) else "baseline")
        return {}

    def evaluate_fn(model):
        return min(1.0, model.d / 50) if isinstance(model, SubspaceModel) else base_acc

    return Task("closed_form", model_fn, train_fn, evaluate_fn, lrs=(1.0,), baseline_lrs=(1.0,),
                n_test=n_test, chance=chance)


def test_result_names_method_and_says_not_reached_in_words():
    r = find_d90(make_task(), seeds=2, d_min=8, d_max=100, grid_factor=2, max_bisect=3)
    assert r.d90 == 45 and r.ci[0] <= 45 == r.ci[1]  # acc(45) = 0.9, clearly above 0.9 x 0.95
    assert "logit" in r.interval_method and r.n_test == 1000 and r.chance == 0.1
    assert all(0 <= p["ci_low"] <= p["ci_high"] <= 1 for p in r.per_d)
    assert 0 <= r.baseline_ci[0] <= r.baseline_ci[1] <= 1
    # an upper end that no tested d reaches: null in JSON, words in the text, never a number > D
    r2 = find_d90(make_task(), seeds=1, threshold=0.9, threshold_rule="absolute", d_min=8, d_max=45,
                  grid_factor=2, max_bisect=0, baseline=0.95)
    assert r2.d90 == 45 and r2.ci[1] is None
    doc = json.loads(json.dumps(r2.to_json()))
    assert doc["ci"][1] is None and doc["ci_upper_reached"] is False and NOT_REACHED in doc["ci_text"]
    assert doc["interval_method"] == r2.interval_method


def test_refuses_epochs_0_before_any_work():
    with pytest.raises(LowdimError, match="epochs=0"):
        get_task("digits_mlp", epochs=0)
    seen = []
    with pytest.raises(LowdimError, match="epochs=0.*at least one epoch"):
        find_d90("digits_mlp", task_options={"epochs": 0}, progress=seen.append)
    assert seen == []


def test_refuses_a_baseline_at_chance_before_the_sweep():
    calls = []
    with pytest.raises(LowdimError, match="majority-class rate 0.1300.*did not learn"):
        find_d90(make_task(base_acc=0.131, chance=0.13, calls=calls), seeds=2, d_min=8)
    assert calls == ["baseline", "baseline"]  # no subspace run was started
    with pytest.raises(LowdimError, match="given baseline=0.12 does not beat"):
        find_d90(make_task(chance=0.13, calls=calls), baseline=0.12, d_min=8)
    assert len(calls) == 2
    # well above chance: accepted (one seed of 1,000 test examples at 0.2 vs chance 0.1)
    assert find_d90(make_task(base_acc=0.2), seeds=1, d_min=8, d_max=16, max_bisect=0).baseline == 0.2


def test_refuses_an_absolute_threshold_the_baseline_cannot_reach():
    calls = []
    with pytest.raises(LowdimError, match="stays below the absolute threshold=0.9"):
        find_d90(make_task(base_acc=0.8, calls=calls), seeds=2, threshold=0.9, threshold_rule="absolute", d_min=8)
    assert "subspace" not in calls
    with pytest.raises(LowdimError, match="absolute threshold=0.9"):
        find_d90(make_task(calls=calls), baseline=0.85, threshold=0.9, threshold_rule="absolute", d_min=8)
    assert len(calls) == 2


def test_accuracy_outside_0_1_is_refused():
    task = make_task(base_acc=1.7, chance=None)
    with pytest.raises(LowdimError, match="returned 1.7"):
        find_d90(task, seeds=1, d_min=8)


def test_paired_difference_seed_only_is_the_paired_t_interval():
    from scipy import stats

    from lowdim.subspace.summary import paired_difference

    a, b = [0.71, 0.74, 0.69, 0.73], [0.75, 0.75, 0.74, 0.78]
    m, lo, hi = paired_difference(a, b)
    ci = stats.ttest_rel(b, a).confidence_interval(0.95)
    assert m == pytest.approx(np.mean(np.subtract(b, a)))
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    m2, lo2, hi2 = paired_difference(a, b, n_test=500)  # the test-set bound only widens it
    assert m2 == pytest.approx(m) and lo2 < lo and hi2 > hi


def test_paired_difference_covers_the_population_difference():
    """Simulated: per-seed accuracies of two configurations scored on one random test set of n
    examples drawn from a population where b is truly 0.02 better; the 95 % interval must cover
    the population difference at least 95 % of the time (the test-set term is a bound)."""
    from lowdim.subspace.summary import paired_difference

    rng, n, S, hits, reps = np.random.default_rng(0), 400, 3, 0, 400
    for _ in range(reps):
        hard = rng.random(n)  # one test set: each example's difficulty
        seed_a, seed_b = rng.normal(0, 0.01, S), rng.normal(0, 0.01, S)
        acc_a = [np.mean(hard < 0.78 + e) for e in seed_a]
        acc_b = [np.mean(hard < 0.80 + e) for e in seed_b]
        _, lo, hi = paired_difference(acc_a, acc_b, n_test=n)
        hits += lo <= 0.02 <= hi
    assert hits / reps >= 0.95


def test_paired_difference_refuses_unpaired_runs():
    from lowdim.subspace.summary import paired_difference

    with pytest.raises(LowdimError, match="equal-length"):
        paired_difference([0.8, 0.9], [0.8])
    m, lo, hi = paired_difference([0.8], [0.85])
    assert m == pytest.approx(0.05) and math.isnan(lo) and math.isnan(hi)


def test_given_baseline_interval_reaches_the_threshold_ends(tmp_path):
    """A baseline given as (mean, low, high) widens the relative threshold like a measured one;
    a bare float is exact; malformed triples are refused before any run."""
    common = {"seeds": 2, "d_min": 8, "d_max": 16, "max_bisect": 0, "task_options": {"epochs": 2}}
    exact = find_d90("digits_mlp", baseline=0.95, results=str(tmp_path / "a.jsonl"), **common)
    wide = find_d90("digits_mlp", baseline=(0.95, 0.90, 0.99), results=str(tmp_path / "b.jsonl"), **common)
    assert all(math.isnan(x) for x in exact.baseline_ci)
    assert exact.threshold_ci == pytest.approx((0.855, 0.855))
    assert wide.baseline_ci == pytest.approx((0.90, 0.99)) and wide.baseline == pytest.approx(0.95)
    assert wide.threshold_ci == pytest.approx((0.81, 0.891)) and wide.config["baseline_given"] == [0.95, 0.9, 0.99]
    assert wide.to_json()["threshold_ci"] == pytest.approx([0.81, 0.891])
    assert [p["mean"] for p in wide.per_d] == [p["mean"] for p in exact.per_d]  # same runs, same seeds
    for bad, msg in [((0.95, 0.97, 0.99), "low ≤ mean ≤ high"), ((0.95, 0.9), "triple"),
                     ((0.95, 0.9, 1.5), "baseline high")]:
        with pytest.raises(LowdimError, match=msg):
            find_d90("digits_mlp", baseline=bad, results=str(tmp_path / "c.jsonl"), **common)


def test_paired_difference_with_per_example_correctness():
    """With per-example bits the test-set term is the paired (McNemar) variance: known answer on a
    hand-made case, narrower than the Cauchy–Schwarz bound, and mismatched bits are refused."""
    from lowdim.subspace.summary import pack_correct, paired_difference, unpack_correct

    rng = np.random.default_rng(1)
    n = 500
    base = rng.random(n) < 0.8
    a_bits = [base.copy() for _ in range(3)]
    b_bits = [base.copy() for _ in range(3)]
    for s, flips in enumerate((20, 22, 18)):  # b fixes `flips` of a's errors, seed by seed
        wrong = np.flatnonzero(~base)[s * 5: s * 5 + flips]
        b_bits[s][wrong] = True
    a, b = [float(x.mean()) for x in a_bits], [float(x.mean()) for x in b_bits]
    m, lo, hi = paired_difference(a, b, correct=(a_bits, b_bits))
    e = (np.array(b_bits, float) - np.array(a_bits, float)).mean(axis=0)
    diff = np.subtract(b, a)
    from scipy import stats

    h = math.sqrt(stats.t.ppf(0.975, 2) ** 2 * diff.var(ddof=1) / 3 + stats.norm.ppf(0.975) ** 2 * e.var(ddof=1) / n)
    assert m == pytest.approx(diff.mean())
    assert hi - m == pytest.approx(h)
    _, lo_cs, hi_cs = paired_difference(a, b, n_test=n)
    assert lo > 0 and lo_cs < 0 < lo  # b better: established only by the paired test-set term
    back = [unpack_correct(pack_correct(x)) for x in a_bits]
    assert all(np.array_equal(x, y) for x, y in zip(back, a_bits))
    with pytest.raises(LowdimError, match="does not match"):
        paired_difference(a, b, correct=(b_bits, a_bits))
    with pytest.raises(LowdimError, match="one per-example array per seed"):
        paired_difference(a, b, correct=(a_bits[:2], b_bits[:2]))


def test_runs_record_per_example_correctness(tmp_path):
    """Built-in tasks: each run keeps its test-set correctness; its mean is the run's metric."""
    from lowdim.subspace.summary import unpack_correct

    res = find_d90("digits_mlp", seeds=1, d_min=16, d_max=16, max_bisect=0, task_options={"epochs": 2},
                   results=str(tmp_path / "r.jsonl"))
    for r in res.runs:
        bits = unpack_correct(r["correct"])
        assert len(bits) == res.n_test and bits.mean() == pytest.approx(r["metric"])
        assert all("_bits" not in t and "correct" not in t for t in r["tried"])
    again = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()[1:]]
    assert [unpack_correct(r["correct"]).sum() for r in again] == [unpack_correct(r["correct"]).sum() for r in res.runs]


def test_given_baseline_triple_is_checked_by_its_ends():
    """A (mean, low, high) baseline is refused at chance by its low end and reaches an absolute
    threshold by its high end, as a measured baseline is."""
    calls = []
    with pytest.raises(LowdimError, match=r"given baseline=0.2 \(interval \[0.12, 0.3\]\) does not beat"):
        find_d90(make_task(chance=0.13, calls=calls), baseline=(0.2, 0.12, 0.3), d_min=8)
    assert calls == []
    r = find_d90(make_task(), baseline=(0.85, 0.8, 0.92), threshold=0.9, threshold_rule="absolute",
                 seeds=1, d_min=8, d_max=64, max_bisect=0)
    assert r.threshold_ci == (0.9, 0.9) and r.d90 == 64
    nan32 = find_d90(make_task(), baseline=(0.9, np.float32("nan"), np.float32("nan")), seeds=1, d_min=8,
                     d_max=16, max_bisect=0)  # numpy NaN ends: no interval, and JSON still writes
    assert json.loads(json.dumps(nan32.to_json()))["baseline_ci"] == [None, None]


def test_paired_difference_degenerate_bits():
    """Bits that agree everywhere keep a non-zero test-set error; ragged or damaged bits are refused."""
    from lowdim.subspace.summary import pack_correct, paired_difference, unpack_correct

    n = 100
    same = [np.ones(n, bool)] * 3
    m, lo, hi = paired_difference([1.0] * 3, [1.0] * 3, correct=(same, same))
    assert m == 0 and lo < 0 < hi and hi == pytest.approx(1.959964 * math.sqrt(0.5 / (n * (n + 1))))
    m1, lo1, hi1 = paired_difference([1.0], [1.0], correct=(same[:1], same[:1]))
    assert lo1 < 0 < hi1
    with pytest.raises(LowdimError, match="all of one length"):
        paired_difference([0.5, 0.5], [0.5, 0.5], correct=([[1, 0], [1, 0, 1, 0]], [[1, 0], [0, 1]]))
    field = pack_correct(np.ones(8, bool))
    with pytest.raises(LowdimError, match="n=20 but holds 1 bytes"):
        unpack_correct({**field, "n": 20})
    assert unpack_correct(pack_correct([])).shape == (0,)


def test_correct_fn_scores_are_refused():
    """A custom correct_fn that returns scores instead of 0/1 is refused (was cast to bool silently)."""
    import dataclasses

    task = dataclasses.replace(make_task(), correct_fn=lambda model: np.full(10, 0.3))
    with pytest.raises(LowdimError, match="correct_fn must return one 0/1"):
        find_d90(task, seeds=1, d_min=8, d_max=8, max_bisect=0)
    ok = dataclasses.replace(make_task(), correct_fn=lambda model: np.array([1, 0, 1, 1]))
    r = find_d90(ok, seeds=1, d_min=8, d_max=8, max_bisect=0, threshold=0.5, threshold_rule="absolute")
    assert all(r_["metric"] == 0.75 for r_ in r.runs)


def test_accuracy_interval_covers_when_two_seeds_dominate():
    """Two seeds whose spread dominates the test-set error: one Welch–Satterthwaite quantile covered
    ≈ 0.87 here; each term at its own quantile must reach the nominal 0.95 (probit model: example
    difficulty z, seed shift u, seed × example noise e; the truth is the population accuracy)."""
    from scipy.stats import norm

    rng, S, n, reps, alpha, tau, sig = np.random.default_rng(1), 2, 2000, 1500, 1.2, 0.15, 0.7
    truth = norm.cdf(alpha / math.sqrt(1 + tau**2 + sig**2))
    hits = 0
    for _ in range(reps):
        z, u = rng.standard_normal(n), tau * rng.standard_normal(S)
        acc = (alpha + z + u[:, None] + sig * rng.standard_normal((S, n)) > 0).mean(axis=1)
        _, lo, hi = accuracy_interval(acc, n)
        hits += lo <= truth <= hi
    assert hits / reps >= 0.94
