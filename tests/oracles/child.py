"""An OptunaSearch over the synthetic hypermodel in a subprocess, for the
kill-and-resume test. Environment: SAMPLER, TRIALS, KILL_AFTER (SIGKILL this
process right after its n-th trial ended; 0: never). Enqueues two
configurations first, as a user script would on every run."""

from __future__ import annotations

import os
import signal
import sys


def main(directory: str) -> None:
    import keras_tuner

    import ktplus
    from tests.oracles.synthetic import Synthetic

    kill_after = int(os.environ.get("KILL_AFTER", "0"))
    ended = {"n": 0}

    class Search(ktplus.OptunaSearch):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            ended["n"] += 1
            if ended["n"] == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    tuner = Search(Synthetic(), objective=keras_tuner.Objective("loss", "min"),
                   max_trials=int(os.environ.get("TRIALS", "8")), sampler=os.environ.get("SAMPLER", "tpe"),
                   seed=5, directory=directory, project_name="p", tensorboard=False)
    tuner.enqueue_trial({"x": 1.0, "y": -0.5})
    tuner.enqueue_trial({"x": -2.0})
    tuner.search(verbose=0)
    print("trials", len(tuner.oracle.trials), len(tuner.oracle.study.trials), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
