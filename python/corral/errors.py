"""Errors of the corral client: one exception class per protocol error code,
plus the client's own (no daemon, version mismatch, disconnected, protocol)."""


class CorralError(Exception):
    """Base of every corral error; .code is the wire name, .message the text."""

    code = "internal"

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self):
        return "%s: %s" % (self.code, self.message)


def _make(name, code, doc):
    return type(name, (CorralError,), {"code": code, "__doc__": doc})


BadRequest = _make("BadRequest", "bad_request", "The daemon refused the arguments.")
UnknownCommand = _make("UnknownCommand", "unknown_command", "No such command.")
UnknownType = _make("UnknownType", "unknown_type", "No such worker type.")
NoSuchWorker = _make("NoSuchWorker", "no_such_worker", "No such worker (or it exited).")
TooLarge = _make("TooLarge", "too_large", "A request line or a result is too large.")
Busy = _make("Busy", "busy", "The queue is full, or the pool is at its max.")
Timeout = _make("Timeout", "timeout", "The call ran past its timeout.")
WorkerCrashed = _make("WorkerCrashed", "worker_crashed", "The worker died during the call.")
WorkerError = _make("WorkerError", "worker_error", "The handler reported failure.")
SandboxViolation = _make("SandboxViolation", "sandbox_violation",
                         "The worker was killed for a forbidden system call.")
Unavailable = _make("Unavailable", "unavailable",
                    "The type is in crash-loop backoff or its workers cannot start.")
PermissionDenied = _make("PermissionDenied", "permission_denied",
                         "This user may not use corrald.")
ShuttingDown = _make("ShuttingDown", "shutting_down", "The daemon is shutting down.")
Internal = _make("Internal", "internal", "The daemon failed internally.")

# The client's own.
NoDaemon = _make("NoDaemon", "no_daemon", "Nothing listens at the socket path.")
VersionMismatch = _make("VersionMismatch", "version",
                        "The daemon speaks an incompatible protocol version.")
Disconnected = _make("Disconnected", "disconnected",
                     "The connection closed (daemon exit or restart).")
ProtocolError = _make("ProtocolError", "protocol", "The daemon's reply broke the protocol.")

#: wire code -> exception class
BY_CODE = {cls.code: cls for cls in (
    BadRequest, UnknownCommand, UnknownType, NoSuchWorker, TooLarge, Busy, Timeout,
    WorkerCrashed, WorkerError, SandboxViolation, Unavailable, PermissionDenied,
    ShuttingDown, Internal)}


def from_reply(error):
    """The exception for a reply's "error" object."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return ProtocolError("error reply without a code")
    code = error["code"]
    msg = error.get("message")
    if not isinstance(msg, str):
        msg = code
    cls = BY_CODE.get(code)
    if cls is None:
        return ProtocolError("unknown error code %r: %s" % (code, msg))
    return cls(msg)
