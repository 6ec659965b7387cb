#!/usr/bin/env python3
"""A complete corral client in Python: call the sha256 worker type with a
file's bytes and print the digest.

    pip install ./python
    CORRAL_SOCKET=/run/corral/corrald.sock python3 examples/client.py FILE

The file goes to the worker as its fd (never read here)."""

import os
import sys

import corral


def main():
    if len(sys.argv) != 2:
        print("usage: client.py FILE", file=sys.stderr)
        return 2
    try:
        fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        print("client.py: %s: %s" % (sys.argv[1], e.strerror), file=sys.stderr)
        return 1
    try:
        with corral.Client() as c:
            digest = c.call("sha256", fd=fd)
    except corral.CorralError as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        os.close(fd)
    print(digest.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
