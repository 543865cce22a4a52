"""Run by ``mla_protobuf_hook.pth`` when the interpreter starts: install the import hook.

Kept tiny, since every Python process of the environment runs it: the hook itself imports
nothing heavy until a module of ``mlagents_envs.communicator_objects`` is imported.
"""

import os

from mla_protobuf.hook import DISABLE_VARIABLE, OFF_VALUES, install

if os.environ.get(DISABLE_VARIABLE, "").strip().lower() not in OFF_VALUES:
    install()
