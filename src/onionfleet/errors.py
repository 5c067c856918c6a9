"""The root of onionfleet's typed errors.

Every error an operator, a peer, tor or a file can cause is an :class:`OnionfleetError`. Each
layer defines its own family below this root in its own ``errors`` module (``hs.errors``,
``tor.errors``, ``cluster.errors`` …). Messages say what failed, which thing, and what to do next;
they never contain secret material. Only ``onionfleet.cli`` turns errors into exit codes.
"""

from __future__ import annotations

__all__ = ["ConfigError", "OnionfleetError"]


class OnionfleetError(Exception):
    """Root of every error onionfleet raises on purpose."""


class ConfigError(OnionfleetError):
    """A configuration value is missing or wrong.

    ``key_path`` is the dotted key (``tor.control_port``), ``fix`` tells the operator what to do.
    """

    def __init__(
        self, message: str, *, key_path: str = "", source: str = "", fix: str = ""
    ) -> None:
        self.key_path = key_path
        self.source = source
        self.fix = fix
        where = ""
        if source and key_path:
            where = f"{source}: {key_path}: "
        elif key_path:
            where = f"{key_path}: "
        elif source:
            where = f"{source}: "
        text = f"{where}{message}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)
