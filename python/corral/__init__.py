"""corral: a client for corrald, the sandboxed worker-process daemon.

Standard library only.  Blocking::

    import corral
    with corral.Client() as c:          # $CORRAL_SOCKET or the default path
        digest = c.call("sha256", b"hello")

asyncio::

    c = await corral.AsyncClient.connect()
    results = await asyncio.gather(*(c.call("echo", b"x") for _ in range(100)))

Errors are exceptions named after the protocol's codes (corral.WorkerError,
corral.Timeout, corral.UnknownType, ...), all subclasses of corral.CorralError.
"""

from .aio import AsyncClient
from .client import Client
from .errors import *  # noqa: F401,F403
from .errors import BY_CODE, CorralError

__version__ = "0.1.0"
__all__ = ["Client", "AsyncClient", "CorralError", "BY_CODE"] + [
    cls.__name__ for cls in BY_CODE.values()] + [
    "NoDaemon", "VersionMismatch", "Disconnected", "ProtocolError"]
