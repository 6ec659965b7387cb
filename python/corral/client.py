"""The blocking client: one connection, one request in flight at a time
(a lock serialises threads sharing a Client; give each thread its own for
parallel calls, or use AsyncClient to pipeline)."""

import os
import socket
import threading

from . import _wire, errors


class Client:
    """A connection to corrald.

    path: the socket; None for $CORRAL_SOCKET, else the default path.
    Raises NoDaemon, PermissionDenied or VersionMismatch when it cannot talk
    to a compatible daemon."""

    def __init__(self, path=None):
        self.path = path or _wire.default_socket()
        self._sock = _wire.connect_socket(self.path)
        self._reader = _wire.Reader()
        self._lock = threading.Lock()
        self._next_id = 1
        self._dead = None
        try:
            self.version = self.ping()["version"]
            _wire.check_version(self.path, self.version)
        except errors.Disconnected as e:
            self.close()
            raise errors.Disconnected("corrald at %s closed the connection before answering: %s"
                                      % (self.path, e.message)) from None
        except BaseException:
            self.close()
            raise

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fileno(self):
        return self._sock.fileno()

    # -- transport

    def _fail(self, exc):
        if self._dead is None:
            self._dead = exc
        raise self._dead

    def _send(self, line, fd):
        # A line with an fd goes in a send of its own: corrald ties the fd to the
        # last line that starts in the read it arrives with.
        try:
            if fd is not None:
                n = socket.send_fds(self._sock, [line], [fd])
                line = line[n:]
            if line:
                self._sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError) as e:
            # The daemon may have said why before closing (permission_denied).
            self._drain()
            self._fail(errors.Disconnected("write to corrald at %s: %s" % (self.path, e.strerror)))

    def _drain(self):
        """Read what is there without waiting; an id-null error becomes the connection's."""
        try:
            self._sock.setblocking(False)
            while True:
                data, fds, _, _ = socket.recv_fds(self._sock, 65536, 8)
                if not data:
                    break
                self._reader.feed(data, fds)
                for obj, fd in self._reader.lines():
                    if fd is not None:
                        os.close(fd)
                    if obj and obj.get("id") is None and obj.get("ok") is False:
                        self._dead = errors.from_reply(obj.get("error"))
        except (BlockingIOError, OSError, errors.CorralError):
            pass
        finally:
            if self._sock is not None:
                self._sock.setblocking(True)

    def _recv(self, want):
        """The reply (dict) to id want and its fd; events of streams are skipped."""
        while True:
            for obj, fd in self._reader.lines():
                if obj is None:
                    if fd is not None:
                        os.close(fd)
                    self._fail(errors.ProtocolError("corrald sent a line that is not JSON"))
                rid = obj.get("id")
                if rid is None and obj.get("ok") is False:
                    self._dead = errors.from_reply(obj.get("error"))
                if rid != want or "event" in obj:
                    if fd is not None:
                        os.close(fd)
                    continue
                return obj, fd
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, 8)
            except ConnectionResetError:
                data, fds = b"", []
            if not data:
                self._fail(self._dead or errors.Disconnected(
                    "corrald closed the connection (%s)" % self.path))
            self._reader.feed(data, fds)

    def _request(self, req, fd=None):
        with self._lock:
            if self._sock is None:
                raise errors.Disconnected("client is closed")
            if self._dead is not None:
                raise self._dead
            rid = self._next_id
            self._next_id += 1
            self._send(_wire.encode(req, rid), fd)
            obj, rfd = self._recv(rid)
        ok = obj.get("ok")
        if ok is True:
            return obj, rfd
        if rfd is not None:
            os.close(rfd)
        if ok is False:
            raise errors.from_reply(obj.get("error"))
        raise errors.ProtocolError("reply without an \"ok\" boolean")

    # -- calls and commands

    def call(self, type, data=b"", key=None, timeout=None, fd=None):
        """Call a worker of type with data (bytes or str); returns the result bytes.

        key: isolation key; timeout: seconds (the type's limit still caps it);
        fd: send this regular file or memfd as the payload instead of data.
        A payload over 64 KiB goes as a sealed memfd automatically."""
        req, sfd, owned = _wire.call_request(type, data, key, timeout, fd)
        try:
            reply, rfd = self._request(req, sfd)
        finally:
            if owned is not None:
                os.close(owned)
        return _wire.result_bytes(reply, rfd)

    def command(self, cmd, **args):
        """Any command; returns the whole ok reply (a dict)."""
        req = dict(args)
        req["cmd"] = cmd
        reply, fd = self._request(req)
        if fd is not None:
            os.close(fd)
        return reply

    def ping(self):
        return self.command("ping")

    def types(self):
        return self.command("types")["types"]

    def list(self, type=None):
        return self.command("list", **({"type": type} if type else {}))["workers"]

    def spawn(self, type, count=1):
        return self.command("spawn", type=type, count=count)["workers"]

    def stop(self, worker=None, type=None, timeout_ms=None):
        args = {"worker": worker} if worker is not None else {"type": type}
        if timeout_ms is not None:
            args["timeout_ms"] = timeout_ms
        return self.command("stop", **args)["stopped"]

    def kill(self, worker, signal="KILL"):
        self.command("kill", worker=worker, signal=signal)

    def stats(self, type=None):
        return self.command("stats", **({"type": type} if type else {}))

    def reload(self):
        return self.command("reload")

    def shutdown(self, timeout_ms=None):
        self.command("shutdown", **({"timeout_ms": timeout_ms} if timeout_ms is not None else {}))

    # -- streams, each on a connection of its own

    def watch(self):
        """Iterate over worker state events (dicts) until the connection closes."""
        return _Stream(self.path, {"cmd": "watch"})

    def logs(self, worker=None, type=None, lines=None, follow=True):
        """Iterate over log lines: the backlog first, then new ones (follow)."""
        req = {"cmd": "logs", "follow": follow}
        if worker is not None:
            req["worker"] = worker
        if type is not None:
            req["type"] = type
        if lines is not None:
            req["lines"] = lines
        return _Stream(self.path, req)


class _Stream:
    """A stream's own connection; iterate for events, close() to end it."""

    def __init__(self, path, req):
        self._c = Client(path)
        reply, fd = self._c._request(req)
        if fd is not None:
            os.close(fd)
        self._backlog = list(reply.get("lines") or [])
        self._id = self._c._next_id - 1

    def __iter__(self):
        return self

    def __next__(self):
        if self._backlog:
            return self._backlog.pop(0)
        c = self._c
        while True:
            for obj, fd in c._reader.lines():
                if fd is not None:
                    os.close(fd)
                if obj and obj.get("id") == self._id and isinstance(obj.get("event"), dict):
                    return obj["event"]
            data, fds, _, _ = socket.recv_fds(c._sock, 1 << 16, 8)
            if not data:
                raise StopIteration
            c._reader.feed(data, fds)

    def settimeout(self, seconds):
        self._c._sock.settimeout(seconds)

    def close(self):
        self._c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
