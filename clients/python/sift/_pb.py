"""Finds and loads sift_pb2, the protobuf module protoc generates from
proto/sift.proto. It is generated at build or test time, never committed.

Where it is looked for, in order:

1. the directory named by the environment variable ``SIFT_PROTO_PATH``
   (which must then hold ``sift_pb2.py``);
2. ``sift/_generated/sift_pb2.py`` inside this package (what
   ``clients/python/gen_proto.sh`` writes by default);
3. a module ``sift_pb2`` importable from ``sys.path``.

If none is found, importing :mod:`sift` raises ImportError saying how to
generate it. Thread-safety: imported once, by Python's import lock.
"""

import importlib
import importlib.util
import os
import sys
from types import ModuleType

_MODULE = "sift_pb2"

_HOW_TO = (
    "sift needs the protobuf module generated from proto/sift.proto "
    "(sift_pb2.py), which is not committed. Generate it from the repository "
    "root with\n"
    "    clients/python/gen_proto.sh\n"
    "(runs: protoc --proto_path=proto "
    "--python_out=clients/python/sift/_generated proto/sift.proto; protoc is "
    "Debian's protobuf-compiler), or generate it anywhere and point "
    "SIFT_PROTO_PATH at that directory. It also needs Debian's "
    "python3-protobuf and python3-zmq, run with /usr/bin/python3."
)


def _load_file(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE]
        raise
    return module


def _load() -> ModuleType:
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    try:
        import zmq  # noqa: F401  (checked here for a clear error)
    except ImportError as e:
        raise ImportError(
            "sift needs Debian's python3-zmq (apt-get install python3-zmq; "
            "tools/deps.sh installs it) and must run on /usr/bin/python3, "
            f"which sees it (this is {sys.executable})") from e
    try:
        import google.protobuf  # noqa: F401  (a clearer error than protoc's)
    except ImportError as e:
        raise ImportError(
            "sift needs Debian's python3-protobuf (apt-get install "
            "python3-protobuf; tools/deps.sh installs it) and must run on "
            f"/usr/bin/python3, which sees it (this is {sys.executable})"
            ) from e
    env = os.environ.get("SIFT_PROTO_PATH")
    if env:
        path = os.path.join(env, _MODULE + ".py")
        if not os.path.exists(path):
            raise ImportError(
                f"SIFT_PROTO_PATH={env} holds no {_MODULE}.py. " + _HOW_TO)
        return _load_file(path)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "_generated", _MODULE + ".py")
    if os.path.exists(here):
        return _load_file(here)
    try:
        return importlib.import_module(_MODULE)
    except ImportError as e:
        raise ImportError(_HOW_TO) from e


pb = _load()
