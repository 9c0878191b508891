"""Benchmark: learning win probabilities on a demo company (issue 7: "training runs in seconds on
the large demo company").

    LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=$(mktemp -d) .venv/bin/python bench/learning_bench.py \
        [--size large] [--repeat 3] [--playbook KEY]

On an empty database it migrates and builds the deterministic demo company of `--size` (not
timed); on one that holds data it uses what is there (e.g. an imported Maven CRM). Then, each
`--repeat` times, it times:

- history:  reading the playbook's deals, spans, stays, evidence and activities (`History`);
- train:    snapshots, the time split, the strength and feature choices, calibration, the
            evaluation of every compared model and the refit for use (`training.train`);
- service:  the whole `win_model_train` (history + train + storing the model);
- explain:  one open deal's probability and factors (`win_explain`: one deal's history);
- forecast: the learned probabilities of every open deal (`learned_probabilities`, the path of
            `loudou forecast --probabilities learned`);

and, as the yardstick in the same run, scikit-learn's own `LogisticRegression` (lbfgs, C = 1)
fitted once on the same training snapshots and features: the floor of any training that fits a
regression on them. Reports the median of each, the ratio to the yardstick, the snapshot counts
and the peak resident memory. Compare ratios between runs: the machine is shared.
"""

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
os.environ.setdefault("LOUDOU_DEBUG", "1")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db.models import Q  # noqa: E402

from loudou.core import clock  # noqa: E402
from loudou.demo.company import existing_data  # noqa: E402
from loudou.learning import training  # noqa: E402
from loudou.learning.features import History, days, feature_names, matrix, outcomes  # noqa: E402
from loudou.learning.selectors import learned_probabilities, win_explain  # noqa: E402
from loudou.learning.services import win_model_train  # noqa: E402
from loudou.org.models import AccessLevel, User  # noqa: E402
from loudou.pipeline.models import Opportunity, Status  # noqa: E402
from loudou.playbooks.models import Playbook  # noqa: E402


def timed(
    work: Callable[..., Any], repeat: int, setup: Callable[[], Any] | None = None
) -> tuple[float, Any]:
    """The median wall time of `repeat` runs of `work`, and the last result. With `setup`, each
    run gets a fresh `setup()` (not timed) as its argument: a `History` remembers the snapshots
    it made, so training twice on one would time the second run without them."""
    times, result = [], None
    for _ in range(repeat):
        given = (setup(),) if setup is not None else ()
        started = time.perf_counter()
        result = work(*given)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="large", help="demo size when the database is empty")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--playbook", default=None, help="playbook key (default: the default)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    if not existing_data():
        started = time.perf_counter()
        call_command("demo", "--size", args.size, verbosity=0)
        print(f"demo --size {args.size}: {time.perf_counter() - started:.1f} s (not timed)")
    playbooks = Playbook.objects.filter(is_current=True)
    playbook = playbooks.get(key=args.playbook) if args.playbook else playbooks.get(is_default=True)
    deals = Opportunity.objects.filter(playbook__key=playbook.key)
    print(
        f"playbook {playbook.key}: {deals.count():,} deals, "
        f"{deals.exclude(status=Status.OPEN).count():,} closed"
    )

    seconds: dict[str, float] = {}
    seconds["history"], history = timed(lambda: History(playbook), args.repeat)
    seconds["train"], result = timed(
        lambda fresh: training.train(fresh, refit_at=days(clock.now())),
        args.repeat,
        setup=lambda: History(playbook),
    )
    seconds["service"], model = timed(
        lambda: win_model_train(playbook=playbook, actor=None), args.repeat
    )

    # The yardstick: one plain regression on the same snapshots and features.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    snaps = result["_train_snapshots"]
    names = feature_names(snaps, history.open_stages)
    x, y = matrix(snaps, names), outcomes(snaps)
    seconds["yardstick"], _fit = timed(
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y),
        args.repeat,
    )

    open_deals = deals.filter(status=Status.OPEN).order_by("pk")
    one = open_deals.first()
    if one is not None:
        # Someone who may see the deal: an administrator, else its owner.
        reader = (
            User.objects.filter(Q(is_superuser=True) | Q(access_level=AccessLevel.ADMIN)).first()
            or one.owner
        )
        seconds["explain"], _seen = timed(lambda: win_explain(reader, one.pk), args.repeat)
    rows = list(open_deals.values_list("pk", "stage__key", "branch_id", "owner_id"))
    seconds["forecast"], (found, _info) = timed(
        lambda: learned_probabilities(playbook, rows), args.repeat
    )

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"training snapshots {result['training_snapshots']:,} of {result['training_deals']:,} "
        f"deals; evaluation {result['evaluation_snapshots']:,} of "
        f"{result['evaluation_deals']:,}; features {len(result['features'])}; "
        f"model used: {model.parameters['used']} (offered: {model.offered}); "
        f"open deals scored: {len(found):,}"
    )
    yard = seconds["yardstick"]
    print(f"{'step':<10} {'median s':>9} {'÷ yardstick':>12}")
    for step, value in seconds.items():
        print(f"{step:<10} {value:>9.3f} {value / yard:>12.1f}")
    print(f"peak resident memory: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
