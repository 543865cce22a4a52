"""Load mlagents' old-protoc message modules on current protobuf (upb).

Installing the distribution is all it takes: a ``.pth`` file installs :class:`DescriptorFinder`
in every Python process of the environment. See :func:`status` to check what it did.
"""

from mla_protobuf.hook import (
    DISABLE_VARIABLE,
    DescriptorFinder,
    DescriptorLoader,
    install,
    is_hooked,
    serialized_descriptor,
    status,
    uninstall,
)
from mla_protobuf.version import __version__

__all__ = [
    "DISABLE_VARIABLE",
    "DescriptorFinder",
    "DescriptorLoader",
    "__version__",
    "install",
    "is_hooked",
    "serialized_descriptor",
    "status",
    "uninstall",
]
