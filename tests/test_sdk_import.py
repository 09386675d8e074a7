"""Importing the SDK must not import the server's heavy dependencies."""

import subprocess
import sys


def test_sdk_import_is_light():
    code = (
        "import sys, vectord\n"
        "c = vectord.Client('127.0.0.1:1')\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('hnswlib', 'onnxruntime', 'tensorflow', 'torch', 'vectord.storage')]\n"
        "heavy += [m for m in sys.modules if m.startswith(('vectord.storage', 'vectord.server'))]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"SDK import pulled in: {out.stdout}"


def test_embedded_mode_loads_the_engine_lazily(tmp_path):
    code = (
        "import sys, vectord\n"
        f"c = vectord.Client(path={str(tmp_path / 'd')!r})\n"
        "print('hnswlib' in sys.modules)\n"
        "c.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_package_loads_the_sdk_on_first_use_only():
    # `vectord serve` and the other commands import the package first: it must not cost them
    # grpc and numpy before they know what they run; `vectord.Client` still just works
    code = (
        "import sys, vectord\n"
        "before = sorted(m for m in ('grpc', 'numpy', 'vectord.client') if m in sys.modules)\n"
        "names = 'Client' in dir(vectord) and 'AsyncCollection' in dir(vectord)\n"
        "from vectord import AsyncClient, Client, Collection\n"
        "print(before, names, Client is vectord.Client, 'grpc' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True True True"
