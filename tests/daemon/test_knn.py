"""The k-NN profile predictor: k by leave-one-out, distance weights, scaling, confidence."""

from __future__ import annotations

import math
import random
import statistics

from data_helpers import profile

from amorsize_lsp.daemon import features
from amorsize_lsp.daemon.features import FEATURES
from amorsize_lsp.daemon.knn import KNN, MIN_GROUPS, Example

N = len(FEATURES)
DEPTH = FEATURES.index("max_loop_depth")
SIZE = FEATURES.index("bytecode_size")
CALLS = FEATURES.index("call_count")


def vec(**values: float | None) -> tuple[float | None, ...]:
    base: list[float | None] = [0.0] * N
    for name, v in values.items():
        base[FEATURES.index(name)] = v
    return tuple(base)


def shaped(depth: int, size: float, calls: float, mean_s: float, group: str) -> Example:
    return Example(
        vec(max_loop_depth=depth, bytecode_size=size, call_count=calls, loop_count=depth),
        profile(mean_s),
        group,
        group,
    )


def loo_log_errors(model: KNN) -> list[float]:
    return [
        abs(math.log(p.profile.mean_s / e.profile.mean_s))
        for e, p in model.leave_one_out()
        if p is not None
    ]


def test_learns_item_time_from_shape_better_than_the_global_mean() -> None:
    rng = random.Random(1)
    examples = []
    for i in range(60):
        depth = rng.randint(0, 3)
        size = rng.uniform(3, 7)
        # Time grows tenfold per loop level and with size; a little noise.
        mean = 1e-6 * 10**depth * math.exp(size - 3) * rng.lognormvariate(0, 0.1)
        examples.append(shaped(depth, size, rng.uniform(0, 3), mean, f"g{i}"))
    model = KNN(examples)
    knn_err = statistics.median(loo_log_errors(model))
    logs = [math.log(e.profile.mean_s) for e in examples]
    base_err = statistics.median(
        abs(statistics.fmean(logs[:i] + logs[i + 1 :]) - logs[i]) for i in range(len(logs))
    )
    assert knn_err < base_err / 2


def test_k_is_chosen_by_leave_one_out() -> None:
    rng = random.Random(2)
    examples = []
    # Clusters of identical shapes whose times scatter: one neighbour is a noisy guess,
    # the average of several is a better one.
    for c in range(8):
        for j in range(6):
            mean = 1e-5 * 3**c * rng.lognormvariate(0, 0.6)
            examples.append(shaped(c % 4, 3 + c, c, mean, f"c{c}-{j}"))
    chosen = KNN(examples)
    assert chosen.k > 1
    errs = {
        k: statistics.fmean(loo_log_errors(KNN(examples, k=k, weights=chosen.weights)))
        for k in (1, chosen.k)
    }
    assert errs[chosen.k] < errs[1]


def test_the_nearest_neighbour_weighs_most() -> None:
    examples = [
        shaped(0, 3.0, 0, 1e-6, "a"),
        shaped(1, 4.0, 0, 1e-4, "b"),
        shaped(2, 5.0, 0, 1e-3, "c"),
        shaped(3, 6.0, 0, 1e-1, "d"),
    ]
    model = KNN(examples, k=3)
    near_b = model.predict(vec(max_loop_depth=1, bytecode_size=4.05, loop_count=1))
    assert near_b is not None
    unweighted = math.exp(
        statistics.fmean(math.log(e.profile.mean_s) for e, _ in near_b.neighbours)
    )
    assert abs(math.log(near_b.profile.mean_s / 1e-4)) < abs(math.log(unweighted / 1e-4))


def test_confidence_falls_with_distance_and_disagreement() -> None:
    agree = [shaped(1, 4.0 + 0.01 * i, 0, 1e-4 * (1 + 0.01 * i), f"a{i}") for i in range(4)]
    far = [shaped(3, 7.0 + 0.1 * i, 3, 1e-1, f"f{i}") for i in range(4)]
    model = KNN(agree + far, k=3)
    inside = model.predict(vec(max_loop_depth=1, bytecode_size=4.02, loop_count=1))
    outside = model.predict(vec(max_loop_depth=9, bytecode_size=20.0, call_count=9, loop_count=9))
    assert inside is not None and outside is not None
    assert inside.confidence > outside.confidence

    split = [shaped(1, 4.0, 0, 1e-6 * 100**i, f"s{i}") for i in range(4)]
    disagree = KNN(split + far, k=3).predict(vec(max_loop_depth=1, bytecode_size=4.0, loop_count=1))
    assert disagree is not None
    assert disagree.spread > inside.spread
    assert disagree.confidence < inside.confidence


def test_too_few_functions_predict_nothing() -> None:
    examples = [shaped(i, 3.0 + i, 0, 1e-4, f"g{i}") for i in range(MIN_GROUPS - 1)]
    assert KNN(examples).predict(vec(max_loop_depth=1)) is None
    # Two machines' profiles of the same function are one function.
    twins = [shaped(1, 4.0, 0, 1e-4, "same") for _ in range(MIN_GROUPS + 2)]
    assert KNN(twins).predict(vec(max_loop_depth=1)) is None


def test_leave_one_out_leaves_the_whole_function_out() -> None:
    examples = [shaped(i % 4, 3.0 + i, i % 3, 1e-5 * (i + 1), f"g{i}") for i in range(8)]
    twin = shaped(2, 5.5, 1, 7e-2, "g-twin")
    examples += [twin, shaped(2, 5.5, 1, 7e-2, "g-twin")]
    model = KNN(examples, k=1)
    for e, p in model.leave_one_out():
        if e.group == "g-twin":
            assert p is not None
            assert all(n.group != "g-twin" for n, _ in p.neighbours)


def test_missing_values_take_the_median_and_constant_features_drop_out() -> None:
    examples = [shaped(i % 4, 3.0 + i, 0, 1e-5 * (i + 1), f"g{i}") for i in range(6)]
    model = KNN(examples)
    assert CALLS not in model.active  # every example has 0 calls
    assert DEPTH in model.active and SIZE in model.active
    partial = list(examples[2].features)
    partial[SIZE] = None
    pred = model.predict(tuple(partial))
    assert pred is not None
    assert math.isfinite(pred.profile.mean_s) and pred.profile.mean_s > 0


def test_predicted_profile_blends_sizes_and_ratios() -> None:
    examples = [
        Example(vec(max_loop_depth=1, bytecode_size=4.0), profile(1e-3, arg_bytes=1e6), "a"),
        Example(vec(max_loop_depth=1, bytecode_size=4.0), profile(1e-3, arg_bytes=1e6), "b"),
        Example(vec(max_loop_depth=3, bytecode_size=8.0), profile(1e-1, arg_bytes=10.0), "c"),
        Example(vec(max_loop_depth=3, bytecode_size=8.1), profile(1e-1, arg_bytes=10.0), "d"),
    ]
    pred = KNN(examples, k=2).predict(vec(max_loop_depth=1, bytecode_size=4.0))
    assert pred is not None
    assert pred.profile.source == "estimated"
    assert math.isclose(pred.profile.arg_bytes, examples[0].profile.arg_bytes)
    assert math.isclose(pred.profile.p95_s / pred.profile.mean_s, 1.2, rel_tol=1e-9)


def test_features_from_a_real_callsite() -> None:
    from data_helpers import callsites_of, loop_function

    site = callsites_of(loop_function("f", 2, 3, length=500))[0]
    v = features.from_callsite(site, "process_pool", 2e-6)
    assert v is not None and len(v) == N
    assert v[FEATURES.index("max_loop_depth")] == site["complexity"]["max_loop_depth"]
    assert v[FEATURES.index("length")] == math.log1p(500)
    assert v[FEATURES.index("thread_executor")] == 0.0
    assert math.isclose(v[FEATURES.index("machine_item_cost")], math.log10(2e-6))
    unresolved = dict(site, complexity={"resolved": False, "reason": "builtin"})
    assert features.from_callsite(unresolved, "process_pool", None) is None


def test_weights_turn_down_a_feature_that_does_not_matter() -> None:
    rng = random.Random(7)
    examples = []
    for i in range(40):
        depth = rng.randint(0, 4)
        noise = rng.uniform(0, 10)  # call_count: unrelated to the time
        examples.append(
            Example(vec(max_loop_depth=depth, call_count=noise), profile(1e-6 * 10**depth), f"g{i}")
        )
    model = KNN(examples)
    assert model.weights[CALLS] < model.weights[DEPTH]
    uniform = KNN(examples, weights=[1.0] * N)
    assert statistics.fmean(loo_log_errors(model)) < statistics.fmean(loo_log_errors(uniform))
