"""The asyncio client: many calls in flight on one connection, matched by id."""

import asyncio
import os
import socket

from . import _wire, errors


class AsyncClient:
    """Use ``client = await AsyncClient.connect(path)``; then ``await client.call(...)``."""

    def __init__(self, path, sock, loop):
        self.path = path
        self.version = None
        self._sock = sock
        self._loop = loop
        self._reader = _wire.Reader()
        self._waiting = {}
        self._next_id = 1
        self._send_lock = asyncio.Lock()
        self._dead = None
        self._null_error = None
        loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def connect(cls, path=None):
        path = path or _wire.default_socket()
        sock = _wire.connect_socket(path)
        sock.setblocking(False)
        c = cls(path, sock, asyncio.get_running_loop())
        try:
            c.version = (await c.command("ping"))["version"]
            _wire.check_version(path, c.version)
        except BaseException:
            await c.close()
            raise
        return c

    async def close(self):
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._reader.close()
            self._die(errors.Disconnected("client is closed"))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def _die(self, exc):
        if self._dead is None:
            self._dead = self._null_error or exc
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(self._dead)
        self._waiting.clear()
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())

    def _readable(self):
        try:
            data, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, 8)
        except BlockingIOError:
            return
        except OSError as e:
            data, fds = b"", []
            if not isinstance(e, ConnectionResetError):
                self._die(errors.Disconnected("read from corrald: %s" % e))
                return
        if not data:
            self._die(errors.Disconnected("corrald closed the connection (%s)" % self.path))
            return
        try:
            self._reader.feed(data, fds)
            for obj, fd in self._reader.lines():
                self._deliver(obj, fd)
        except errors.CorralError as e:
            self._die(e)

    def _deliver(self, obj, fd):
        if obj is None:
            if fd is not None:
                os.close(fd)
            raise errors.ProtocolError("corrald sent a line that is not a JSON object")
        rid = obj.get("id")
        if rid is None and obj.get("ok") is False:
            self._null_error = errors.from_reply(obj.get("error"))
        fut = self._waiting.pop(rid, None) if isinstance(rid, int) and "event" not in obj else None
        if fut is None or fut.done():
            if fd is not None:
                os.close(fd)
            return
        fut.set_result((obj, fd))

    async def _send(self, line, fd):
        async with self._send_lock:
            if fd is not None:
                # A send of its own: corrald ties the fd to the last line that
                # starts in the read it arrives with.
                while True:
                    try:
                        n = socket.send_fds(self._sock, [line], [fd])
                        line = line[n:]
                        break
                    except BlockingIOError:
                        fut = self._loop.create_future()
                        self._loop.add_writer(self._sock.fileno(), fut.set_result, None)
                        try:
                            await fut
                        finally:
                            self._loop.remove_writer(self._sock.fileno())
            if line:
                await self._loop.sock_sendall(self._sock, line)

    async def _request(self, req, fd=None):
        if self._dead is not None:
            raise self._dead
        rid = self._next_id
        self._next_id += 1
        fut = self._loop.create_future()
        self._waiting[rid] = fut
        try:
            await self._send(_wire.encode(req, rid), fd)
        except OSError as e:
            self._waiting.pop(rid, None)
            self._die(errors.Disconnected("write to corrald at %s: %s" % (self.path, e)))
            raise self._dead from None
        obj, rfd = await fut
        if obj.get("ok") is True:
            return obj, rfd
        if rfd is not None:
            os.close(rfd)
        if obj.get("ok") is False:
            raise errors.from_reply(obj.get("error"))
        raise errors.ProtocolError("reply without an \"ok\" boolean")

    async def call(self, type, data=b"", key=None, timeout=None, fd=None):
        """As Client.call, awaitable; many may be in flight at once."""
        req, sfd, owned = _wire.call_request(type, data, key, timeout, fd)
        try:
            reply, rfd = await self._request(req, sfd)
        finally:
            if owned is not None:
                os.close(owned)
        return _wire.result_bytes(reply, rfd)

    async def command(self, cmd, **args):
        """Any command; the whole ok reply (a dict)."""
        req = dict(args)
        req["cmd"] = cmd
        reply, fd = await self._request(req)
        if fd is not None:
            os.close(fd)
        return reply
