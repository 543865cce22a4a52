"""``python -m mla_sweep.learn ARGS``: ``mlagents-learn ARGS`` with the trial's torch threads.

mlagents sizes torch's intra-op thread pool itself when it is imported (half of
``os.cpu_count()``, at most 4), whatever CPUs the process may use. A trial started by
:mod:`mla_sweep.trial` sets ``MLA_SWEEP_TORCH_THREADS`` to its core count; this module lets
mlagents do its sizing, sets that count, prints one line about the trial's CPUs into the log
and runs ``mlagents-learn``'s own ``main``.

A Ray worker ignores SIGINT and blocks it in the thread that runs a trial, and its child
inherits both: mlagents would go on training through the SIGINT that stops a trial (Python
installs no ``KeyboardInterrupt`` handler for an ignored SIGINT). This module restores
SIGINT first, then starts the trial's watchdog (:mod:`mla_sweep.watchdog`).
"""

from __future__ import annotations

import os
import signal
import sys

from mla_sweep.cpus import TORCH_THREADS_VARIABLE, usable_cores
from mla_sweep.watchdog import start_watchdog

#: First argument of ``python -m mla_sweep.learn`` for a trial run by ``mla-learn``.
LEARNER_FLAG = "--mla-learn"


def main() -> None:
    """``mlagents-learn`` with torch's thread count set to the trial's (after mlagents' own
    import has set it from the machine's core count), then mlagents' own ``main``; SIGINT
    stops it as Ctrl-C does, and the trial's watchdog runs beside it."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    start_watchdog()
    from mlagents.torch_utils import torch  # mlagents sets its own thread count here

    threads = os.environ.get(TORCH_THREADS_VARIABLE)
    if threads:
        torch.set_num_threads(int(threads))
    cores = usable_cores()
    print(
        f"mla-sweep: CPUs {cores if cores is not None else 'any'}, "
        f"torch threads {torch.get_num_threads()}",
        flush=True,
    )
    if sys.argv[1:2] == [LEARNER_FLAG]:  # sweep.learner: mla-learn
        from mla_ray.cli import main as mla_learn_main

        raise SystemExit(mla_learn_main(sys.argv[2:]))
    from mlagents.trainers.learn import main as learn_main

    learn_main()


if __name__ == "__main__":
    main()
