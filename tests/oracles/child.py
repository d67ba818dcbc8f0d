"""OptunaSearch runs over the synthetic hypermodel in a subprocess, for the
kill-and-resume test. Environment: SEARCHES, a comma-separated list of
``sampler`` or ``sampler:n`` run one after the other in this process, each
in its own project ``p_<sampler>`` (``:n``: SIGKILL this process right after
that search's n-th trial ended), and TRIALS. Each search enqueues two
configurations first, as a user script would on every run."""

from __future__ import annotations

import os
import signal
import sys


def search(directory: str, sampler: str, kill_after: int) -> None:
    import keras_tuner

    import ktplus
    from tests.oracles.synthetic import Synthetic

    ended = {"n": 0}

    class Search(ktplus.OptunaSearch):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            ended["n"] += 1
            if ended["n"] == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    tuner = Search(Synthetic(), objective=keras_tuner.Objective("loss", "min"),
                   max_trials=int(os.environ.get("TRIALS", "8")), sampler=sampler,
                   seed=5, directory=directory, project_name=f"p_{sampler}", tensorboard=False)
    tuner.enqueue_trial({"x": 1.0, "y": -0.5})
    tuner.enqueue_trial({"x": -2.0})
    tuner.search(verbose=0)
    print("trials", sampler, len(tuner.oracle.trials), len(tuner.oracle.study.trials), flush=True)


def main(directory: str) -> None:
    for item in os.environ.get("SEARCHES", "tpe").split(","):
        sampler, _, kill_after = item.partition(":")
        search(directory, sampler, int(kill_after or 0))


if __name__ == "__main__":
    main(sys.argv[1])
