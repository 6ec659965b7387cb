"""A PEP 517 build backend in the standard library alone: it packs the
corral package into a wheel (and an sdist), nothing more."""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME = "corral"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Client for corrald: call sandboxed worker processes\n"
            "Requires-Python: >=3.9\nLicense: MIT\n" % (NAME, VERSION))
WHEEL = "Wheel-Version: 1.0\nGenerator: corral_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _sources():
    pkg = os.path.join(HERE, NAME)
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py"):
            yield "%s/%s" % (NAME, f), os.path.join(pkg, f)


def _digest(data):
    d = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "sha256=%s,%d" % (d, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = "%s-%s.dist-info" % (NAME, VERSION)
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w") as f:
        f.write(METADATA)
    with open(os.path.join(metadata_directory, info, "WHEEL"), "w") as f:
        f.write(WHEEL)
    return info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    info = "%s-%s.dist-info" % (NAME, VERSION)
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        files = [(arc, open(path, "rb").read()) for arc, path in _sources()]
        files += [(info + "/METADATA", METADATA.encode()), (info + "/WHEEL", WHEEL.encode())]
        for arc, data in files:
            z.writestr(arc, data)
            record.append("%s,%s" % (arc, _digest(data)))
        record.append(info + "/RECORD,,")
        z.writestr(info + "/RECORD", "\n".join(record) + "\n")
    return name


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, VERSION)
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "_build/corral_build.py"] + [a for a, _ in _sources()]:
            t.add(os.path.join(HERE, rel), arcname="%s/%s" % (base, rel))
        pkg = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (NAME, VERSION)).encode()
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(pkg)
        t.addfile(ti, io.BytesIO(pkg))
    return name
