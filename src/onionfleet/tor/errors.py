"""Typed errors of the ``onionfleet.tor`` layer (talking to C-Tor).

The family follows h11's split (STYLE.md §1): :class:`LocalProtocolError` means *we* asked for
something the control protocol does not allow (a CR/LF inside an argument, an ``HSPOST`` without
``HSADDRESS=``), :class:`RemoteProtocolError` means tor (or whatever answered on the control port)
sent bytes that are not a valid control-protocol reply (control-spec §2.3). :class:`TorCommandError`
is a well-formed 4xx/5xx reply. Messages never contain the control password or cookie.
"""

from __future__ import annotations

from onionfleet.errors import OnionfleetError

__all__ = [
    "ConsensusError",
    "ControlAuthError",
    "ControlConnectionLost",
    "ControlProtocolError",
    "ControlTimeout",
    "LocalProtocolError",
    "ManagedTorError",
    "RemoteProtocolError",
    "TorCommandError",
    "TorError",
]


class TorError(OnionfleetError):
    """Root of every error of the tor layer."""


class ControlProtocolError(TorError):
    """Abstract: a control-protocol violation. Instantiate a Local or Remote subclass."""

    def __init__(self, message: str) -> None:
        if type(self) is ControlProtocolError:
            raise TypeError("ControlProtocolError is abstract: use Local- or RemoteProtocolError")
        super().__init__(message)


class LocalProtocolError(ControlProtocolError):
    """We asked the codec to send something the control protocol (or tor 0.4.9) cannot take."""


class RemoteProtocolError(ControlProtocolError):
    """The control port sent bytes that are not a valid reply (control-spec §2.3).

    After this error the codec is in its error state: drop the connection and reconnect.
    """


class TorCommandError(TorError):
    """Tor answered a command with a 4xx/5xx status (control-spec §4 "Replies").

    ``code`` is tor's three-digit status, ``text`` the reply text of the final line, ``command``
    the command keyword (never its arguments: AUTHENTICATE carries secrets).
    """

    def __init__(self, code: int, text: str, command: str = "") -> None:
        self.code = code
        self.text = text
        self.command = command
        what = f"tor refused {command}" if command else "tor refused the command"
        super().__init__(f"{what}: {code} {text}")


class ControlAuthError(TorError):
    """Authenticating to tor's control port failed (control-spec §3.5 AUTHENTICATE, §3.24)."""


class ControlConnectionLost(TorError):
    """The control connection closed or broke while a command was waiting for its reply."""


class ControlTimeout(TorError):
    """A control command got no reply in time. ``command`` names it (keyword only)."""

    def __init__(self, command: str, timeout_s: float) -> None:
        self.command = command
        self.timeout_s = timeout_s
        super().__init__(
            f"tor did not answer {command} within {timeout_s:g} s "
            "(is tor alive and its control connection healthy? check tor's log)"
        )


class ConsensusError(TorError):
    """The microdesc consensus or a microdescriptor from tor could not be parsed."""


class ManagedTorError(TorError):
    """The tor process onionfleet manages could not be started, bootstrapped or stopped."""
