"""The Python client (python/corral) against a real corrald: installed with
pip (offline) into a temporary directory, then blocking calls, asyncio calls,
commands, streams, errors as exceptions, and examples/client.py."""

import asyncio
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ["CORRAL_SRC"]
CONFIG = {"types": {
    "echo": {"builtin": "echo", "pool": {"min": 1, "max": 4, "queue": 1000}},
    "sha256": {"builtin": "sha256"},
    "fail": {"mode": "stdio", "exec": ["/bin/sh", "-c", "echo oops >&2; exit 3"]},
    "hang": {"mode": "stdio", "exec": ["/bin/sh", "-c", "exec sleep 60"]},
    "iso": {"builtin": "echo", "pool": {"isolate": "key"}},
    "one": {"builtin": "echo", "pool": {"max": 1}},
}}

corral = None
PIP = importlib.util.find_spec("pip") is not None


def setUpModule():
    global corral, TMP, SOCK, DAEMON, LOG
    TMP = tempfile.mkdtemp(prefix="corral-py-")
    # pip install ./python, offline: the build backend is in-tree, stdlib only.
    target = os.path.join(TMP, "site")
    if PIP:
        # --target is no system install; the variable keeps Debian's pip (PEP 668) quiet.
        env = dict(os.environ, PIP_BREAK_SYSTEM_PACKAGES="1")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
                        "--disable-pip-version-check", "--target", target,
                        os.path.join(SRC, "python")], check=True, env=env)
    else:
        target = os.path.join(SRC, "python")
    sys.path.insert(0, target)
    import corral as mod
    corral = mod
    assert os.path.dirname(corral.__file__).startswith(target), corral.__file__
    with open(os.path.join(TMP, "corral.json"), "w") as f:
        json.dump(CONFIG, f)
    SOCK = os.path.join(TMP, "s.sock")
    LOG = open(os.path.join(TMP, "log"), "w")
    DAEMON = subprocess.Popen([os.environ["CORRALD"], "--socket", SOCK, "--config",
                               os.path.join(TMP, "corral.json")],
                              stdin=subprocess.DEVNULL, stdout=LOG, stderr=LOG)
    deadline = time.monotonic() + 20
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(SOCK)
            break
        except OSError:
            if DAEMON.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("corrald did not start: " + open(LOG.name).read())
            time.sleep(0.005)  # waiting for the daemon's socket to appear
        finally:
            s.close()


def tearDownModule():
    if DAEMON.poll() is None:
        DAEMON.send_signal(signal.SIGTERM)
        try:
            DAEMON.wait(20)
        except subprocess.TimeoutExpired:
            DAEMON.kill()
            DAEMON.wait()
    LOG.close()
    shutil.rmtree(TMP, ignore_errors=True)


class Install(unittest.TestCase):
    @unittest.skipUnless(PIP, "pip is not installed (scripts/deps.sh installs python3-pip)")
    def test_pip_install(self):
        self.assertTrue(os.path.isdir(os.path.join(TMP, "site", "corral-0.1.0.dist-info")))


class Blocking(unittest.TestCase):
    def setUp(self):
        self.c = corral.Client(SOCK)

    def tearDown(self):
        self.c.close()

    def test_call(self):
        self.assertEqual(self.c.call("echo", b"hello"), b"hello")
        self.assertEqual(self.c.call("echo", "text"), b"text")
        self.assertEqual(self.c.call("echo", b""), b"")
        self.assertEqual(self.c.call("echo", b"\xff\x00\xfe"), b"\xff\x00\xfe")
        big = os.urandom(3 << 20)  # past 64 KiB: a sealed memfd, the result an fd
        self.assertEqual(self.c.call("echo", big), big)
        self.assertEqual(self.c.call("sha256", big).decode(), hashlib.sha256(big).hexdigest())
        self.assertEqual(self.c.call("iso", b"k", key="tenant-a"), b"k")

    def test_call_fd(self):
        path = os.path.join(TMP, "in")
        data = os.urandom(200000)
        with open(path, "wb") as f:
            f.write(data)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.assertEqual(self.c.call("sha256", fd=fd).decode(),
                             hashlib.sha256(data).hexdigest())
        finally:
            os.close(fd)

    def test_errors(self):
        with self.assertRaises(corral.UnknownType) as cm:
            self.c.call("nosuch", b"x")
        self.assertEqual(cm.exception.code, "unknown_type")
        self.assertTrue(cm.exception.message)
        with self.assertRaises(corral.WorkerError):
            self.c.call("fail", b"x")
        with self.assertRaises(corral.BadRequest):
            self.c.call("echo", b"x", key="k")
        with self.assertRaises(corral.Timeout):
            self.c.call("hang", b"x", timeout=0.3)
        with self.assertRaises(corral.UnknownCommand):
            self.c.command("nope")
        with self.assertRaises(corral.NoSuchWorker):
            self.c.kill(999999)
        with self.assertRaises(corral.Busy):
            self.c.spawn("one", 2)
        with self.assertRaises(corral.NoDaemon):
            corral.Client(os.path.join(TMP, "nothing.sock"))
        for code, cls in corral.BY_CODE.items():
            self.assertTrue(issubclass(cls, corral.CorralError))
            self.assertEqual(cls.code, code)
        self.assertEqual(len(corral.BY_CODE), 14)
        # The connection is still good after errors.
        self.assertEqual(self.c.call("echo", b"ok"), b"ok")

    def test_commands(self):
        p = self.c.ping()
        self.assertEqual(p["pid"], DAEMON.pid)
        self.assertEqual(self.c.version, "0.1.0")
        self.assertIn("echo", [t["name"] for t in self.c.types()])
        w = self.c.watch()
        w.settimeout(20)
        ids = self.c.spawn("sha256", 1)
        self.assertEqual(len(ids), 1)
        for ev in w:
            if ev["worker"] == ids[0] and ev["state"] == "idle":
                break
        self.assertIn(ids[0], [x["id"] for x in self.c.list("sha256")])
        self.assertEqual(self.c.stop(worker=ids[0]), ids)
        for ev in w:
            if ev["worker"] == ids[0] and ev["state"] == "exited":
                break
        w.close()
        self.assertIn("calls_ok", self.c.stats())
        self.assertIn("added", self.c.reload())

    def test_logs(self):
        with self.assertRaises(corral.WorkerError):
            self.c.call("fail", b"x")
        with self.c.logs(type="fail", lines=5) as logs:
            logs.settimeout(20)
            ev = next(logs)
            self.assertEqual(ev["text"], "oops")
            self.assertEqual(ev["stream"], "stderr")

    def test_example(self):
        path = os.path.join(TMP, "ex")
        data = b"corral example\n" * 1000
        with open(path, "wb") as f:
            f.write(data)
        env = dict(os.environ, CORRAL_SOCKET=SOCK, PYTHONPATH=os.path.dirname(
            os.path.dirname(corral.__file__)))
        r = subprocess.run([sys.executable, os.path.join(SRC, "examples", "client.py"), path],
                           env=env, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().strip(), hashlib.sha256(data).hexdigest())


class Async(unittest.TestCase):
    def test_pipelined(self):
        async def run():
            c = await corral.AsyncClient.connect(SOCK)
            try:
                payloads = [("p%d" % i).encode() for i in range(300)]
                big = os.urandom(1 << 20)
                calls = [c.call("echo", p) for p in payloads] + [c.call("echo", big)]
                got = await asyncio.gather(*calls)
                self.assertEqual(got[:-1], payloads)
                self.assertEqual(got[-1], big)
                with self.assertRaises(corral.UnknownType):
                    await c.call("nosuch", b"x")
                with self.assertRaises(corral.Timeout):
                    await c.call("hang", b"x", timeout=0.2)
                self.assertEqual((await c.command("ping"))["version"], "0.1.0")
            finally:
                await c.close()
        asyncio.run(run())


if __name__ == "__main__":
    unittest.main(verbosity=2)
