"""Errors of the private Tor network harness."""

from __future__ import annotations

from onionfleet.errors import OnionfleetError

__all__ = ["FetchTimeoutError", "SocksReplyError", "TestnetError"]


class TestnetError(OnionfleetError):
    """The private Tor network (or one tor on it) failed to start, stop or answer in time.

    The message names the tor instance and, where there is one, quotes the last lines of its log.
    """

    __test__ = False  # not a pytest test class, despite the name


class SocksReplyError(TestnetError):
    """A SOCKS5 request through a test client was refused; ``reply_code`` is the SOCKS5 REP byte.

    tor's extended codes (``ExtendedErrors``, prop 304 / tor-spec socks-extensions) are
    0xF0-0xF7, e.g. 0xF0 "onion service descriptor not found".
    """

    def __init__(self, message: str, *, reply_code: int) -> None:
        self.reply_code = reply_code
        super().__init__(message)


class FetchTimeoutError(TestnetError):
    """A fetch through a test client got no (complete) answer within its time limit."""
