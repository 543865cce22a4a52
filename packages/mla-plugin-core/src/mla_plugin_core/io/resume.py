"""A ``--resume`` that cannot continue from what is on disk, refused with nothing written.

:class:`ResumeError` is raised by the trainers' checks (checkpoint, replay store) before
anything of the run is changed; :func:`refusing_resume` tells every save on the way out
(ours, and mlagents' end-of-run writes once :mod:`mla_plugin_core.host` guards them) to do
nothing.
"""

from __future__ import annotations

import sys

from mlagents.trainers.exception import TrainerConfigError

__all__ = ["ResumeError", "refusing_resume"]


class ResumeError(TrainerConfigError):
    """``--resume`` cannot continue from what is on disk; nothing was written.

    The message is one line: ``cannot resume <file>: <what differs>; <what to do>``.
    """


def refusing_resume() -> bool:
    """Whether a :class:`ResumeError` is unwinding the stack (so nothing may be saved).

    True inside the ``finally`` blocks that mlagents runs on the way out (its end-of-run
    save of every trainer, its bookkeeping files).
    """
    return isinstance(sys.exc_info()[1], ResumeError)
