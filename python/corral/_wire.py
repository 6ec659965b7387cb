"""Bytes on the wire, shared by the blocking and asyncio clients: request
lines, the receive buffer that ties fds to reply lines, payload memfds and
result decoding."""

import base64
import fcntl
import json
import mmap
import os
import socket

from . import errors

LINE_MAX = 1024 * 1024
#: payloads larger than this go as a sealed memfd, not inside the JSON line
INLINE_MAX = 64 * 1024
VERSION = "0.1.0"
_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


def default_socket():
    """$CORRAL_SOCKET, else the daemon's default path (DESIGN.md)."""
    env = os.environ.get("CORRAL_SOCKET")
    if env:
        return env
    if os.geteuid() == 0:
        return "/run/corral/corrald.sock"
    rt = os.environ.get("XDG_RUNTIME_DIR")
    if rt:
        return os.path.join(rt, "corral", "corrald.sock")
    return "/run/user/%d/corral/corrald.sock" % os.getuid()


def connect_socket(path):
    """A connected blocking socket, or NoDaemon / PermissionDenied."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as e:
        s.close()
        raise errors.NoDaemon("cannot connect to %s: %s (is corrald running?)"
                              % (path, e.strerror)) from None
    except PermissionError as e:
        s.close()
        raise errors.PermissionDenied("cannot connect to %s: %s" % (path, e.strerror)) from None
    except OSError:
        s.close()
        raise
    return s


def check_version(path, version):
    """Raise VersionMismatch unless the daemon's version is compatible with ours."""
    def majmin(v):
        parts = str(v).split(".")
        return int(parts[0]), int(parts[1])
    try:
        dmaj, dmin = majmin(version)
    except (ValueError, IndexError):
        raise errors.VersionMismatch("corrald at %s reports version %r" % (path, version))
    lmaj, lmin = majmin(VERSION)
    if dmaj != lmaj or (lmaj == 0 and dmin != lmin):
        raise errors.VersionMismatch("corrald at %s speaks version %s, this client %s"
                                     % (path, version, VERSION))


def sealed_memfd(data):
    """A memfd holding data, sealed against write, shrink and grow."""
    fd = os.memfd_create("corral-payload", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def call_request(type_, data, key, timeout, fd):
    """The call request (without id) and the fd to send (ours to close: owned)."""
    req = {"cmd": "call", "type": type_}
    if key is not None:
        req["key"] = key
    if timeout is not None:
        req["timeout_ms"] = max(1, int(timeout * 1000))
    owned = None
    if fd is not None:
        req["payload_fd"] = True
    else:
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        if len(data) > INLINE_MAX:
            fd = owned = sealed_memfd(data)
            req["payload_fd"] = True
        else:
            try:
                req["payload"] = data.decode("utf-8")
            except UnicodeDecodeError:
                req["payload_b64"] = base64.b64encode(data).decode()
    return req, fd, owned


def encode(req, id_):
    """One request line."""
    req = dict(req)
    req["id"] = id_
    line = json.dumps(req, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    if len(line) > LINE_MAX + 1:
        raise errors.TooLarge("request line of %d bytes exceeds %d" % (len(line), LINE_MAX))
    return line


def result_bytes(reply, fd):
    """The bytes of an ok call reply (fd: the result fd that came with it, closed here)."""
    try:
        if fd is not None:
            if reply.get("result_fd") is not True:
                raise errors.ProtocolError("an fd came with a reply without result_fd")
            size = os.fstat(fd).st_size
            if size == 0:
                return b""
            with mmap.mmap(fd, size, prot=mmap.PROT_READ) as m:
                return bytes(m)
        if isinstance(reply.get("result"), str):
            return reply["result"].encode("utf-8", "surrogatepass")
        if isinstance(reply.get("result_b64"), str):
            try:
                return base64.b64decode(reply["result_b64"], validate=True)
            except ValueError:
                raise errors.ProtocolError("result_b64 is not valid base64") from None
        raise errors.ProtocolError("ok call reply without a result")
    finally:
        if fd is not None:
            os.close(fd)


class Reader:
    """Receive buffer: splits lines and ties received fds to them.

    corrald sends an fd with the first write of its reply line, and the kernel
    never glues bytes after a message carrying fds, so the fd belongs to the
    last line that starts in the chunk it came with (or, if none starts there,
    to the line holding the chunk's first byte)."""

    def __init__(self):
        self.buf = bytearray()
        self.base = 0          # stream offset of buf[0]
        self.fds = []          # (anchor offset, fd)
        self.at_start = True

    def feed(self, data, fds):
        off = self.base + len(self.buf)
        anchor = off
        i = data.rfind(b"\n", 0, max(len(data) - 1, 0))
        if i >= 0:
            anchor = off + i + 1
        for fd in fds:
            if len(self.fds) < 16:
                self.fds.append((anchor, fd))
            else:
                os.close(fd)
        self.buf += data
        if len(self.buf) > LINE_MAX + 1 and b"\n" not in self.buf:
            raise errors.ProtocolError("a reply line from corrald exceeds %d bytes" % LINE_MAX)

    def lines(self):
        """Yield (parsed object or None, fd or None) for every whole line."""
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                return
            nl = self.base + i
            line = bytes(self.buf[:i])
            del self.buf[:i + 1]
            self.base = nl + 1
            fd = None
            keep = []
            for anchor, f in self.fds:
                if anchor <= nl:
                    if fd is None:
                        fd = f
                    else:
                        os.close(f)
                else:
                    keep.append((anchor, f))
            self.fds = keep
            try:
                obj = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                obj = None
            if not isinstance(obj, dict):
                obj = None
            yield obj, fd

    def close(self):
        for _, f in self.fds:
            os.close(f)
        self.fds = []
