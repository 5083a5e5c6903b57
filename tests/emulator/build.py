#!/usr/bin/env python3
"""Build the tltpipe TAO emulator images offline.

    python tests/emulator/build.py            # build what is missing or stale
    python tests/emulator/build.py --force    # rebuild every image

Steps:
1. A minimal Debian root filesystem made by debootstrap (python3, python3-protobuf and, for the
   PyTorch networks' YAML specs, python3-omegaconf 2.2 + python3-yaml), tarred and cached under
   <repo>/.cache/emulator/ keyed by the debootstrap arguments.
2. ``docker import`` of that tarball as the base image (once per cache key).
3. One small image per toolkit version and role, FROM the base, holding the emulator package in
   /opt/tao_emulator and one entrypoint script per command that exists in that version/role.
   NVIDIA's own definitions go into the package's definitions/ folder of the build context only
   (never the source tree): the spec schemas of the version (FileDescriptorSets read from NVIDIA's
   wheels through tests/reference) and, in deploy images, TAO Deploy's task options. Images of a
   toolkit with PyTorch networks (TAO 6.26.3: pyt and deploy) get the `nvidia_tao_core.config`
   package of NVIDIA's nvidia-tao-core wheel in pylib/ of the build context, likewise never in the
   source tree: its ExperimentConfig dataclasses validate RT-DETR's and DINO's specs.
   Each image carries a label with the hash of the emulator sources; an image whose label matches
   is reused, so a build from cache takes seconds.

Importable: ``build_all()`` returns {tag: image_id}; ``version_table()`` describes the tags.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = REPO / ".cache" / "emulator"
PACKAGE = HERE / "tao_emulator"

IMAGE_REPO = "tltpipe-emulator"
BASE_REPO = "tltpipe-emulator-base"
HASH_LABEL = "org.tltpipe.emulator.hash"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# python3-omegaconf (2.2.2 in bookworm, with python3-antlr4 4.9) loads NVIDIA's ExperimentConfig
# dataclasses of nvidia-tao-core 7.3.0 as the host's OmegaConf does.
INCLUDE = ("python3", "python3-protobuf", "python3-omegaconf", "python3-yaml")

# (version, role) -> tag.  The emulator reads TAO_EMU_VERSION / TAO_EMU_ROLE to know what it is.
IMAGES = (
    ("2.0", "tf"),
    ("3.21.11", "tf"),
    ("3.22.05", "tf"),
    ("4.0", "tf"),
    ("5.0", "tf"),
    ("4.0", "deploy"),
    ("5.0", "deploy"),
    ("6.26.3", "deploy"),
    ("6.26.3", "pyt"),
)
# Toolkits whose TF1 networks run in another version's TF image (NVIDIA's launcher of TAO 6.26.3
# maps them to tao-toolkit:5.0.0-tf1.15.5).
TF_IMAGE_OF = {"6.26.3": "5.0"}
ROLE_KEYS = {"tf": "image", "deploy": "deploy_image", "pyt": "pyt_image"}


class BuildError(RuntimeError):
    """The emulator images could not be built."""


def tag_for(version: str, role: str) -> str:
    return f"{IMAGE_REPO}:{role}-{version}"


def version_table() -> dict[str, dict[str, str | None]]:
    """{"5.0": {"image": "tltpipe-emulator:tf-5.0", "deploy_image": "tltpipe-emulator:deploy-5.0",
    "pyt_image": None}, ..., "6.26.3": {"image": "tltpipe-emulator:tf-5.0", "deploy_image":
    "tltpipe-emulator:deploy-6.26.3", "pyt_image": "tltpipe-emulator:pyt-6.26.3"}}"""
    table: dict[str, dict[str, str | None]] = {}
    for version, role in IMAGES:
        entry = table.setdefault(version, {"image": None, "deploy_image": None, "pyt_image": None})
        entry[ROLE_KEYS[role]] = tag_for(version, role)
    for version, tf_version in TF_IMAGE_OF.items():
        table[version]["image"] = tag_for(tf_version, "tf")
    return table


# --------------------------------------------------------------------------------------------
# helpers


def _run(argv: list[str], *, quiet: bool = False, env: dict | None = None, input_bytes=None) -> str:
    proc = subprocess.run(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        input=input_bytes,
    )
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-30:])
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(argv)}\n{tail}")
    if not quiet and out.strip():
        sys.stderr.write(out)
    return out


def _log(msg: str) -> None:
    sys.stderr.write(f"[emulator-build] {msg}\n")
    sys.stderr.flush()


def debian_mirror() -> str:
    """The Debian mirror configured for apt (deb822 or one-line style), else deb.debian.org."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [
        Path("/etc/apt/sources.list")
    ] + sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.lstrip().startswith("#"):
                        k, _, v = line.partition(":")
                        fields[k.strip().lower()] = v.strip()
                suites = fields.get("suites", "").split()
                if SUITE in suites and fields.get("uris"):
                    return fields["uris"].split()[0].rstrip("/")
        else:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb":
                    # deb [opts] URI suite comp...
                    rest = [p for p in parts[1:] if not p.startswith("[") and not p.endswith("]")]
                    if len(rest) >= 2 and rest[1] == SUITE:
                        return rest[0].rstrip("/")
    return DEFAULT_MIRROR


def debootstrap_args(target: str, mirror: str | None = None) -> list[str]:
    mirror = mirror or debian_mirror()
    return [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(INCLUDE),
        SUITE,
        target,
        mirror,
    ]


def rootfs_key(mirror: str | None = None) -> str:
    args = debootstrap_args("DIR", mirror)
    return hashlib.sha256("\0".join(args).encode()).hexdigest()[:16]


def _emulator():
    """The emulator's own modules (catalog: commands per image; nvidia: NVIDIA's definitions)."""
    sys.path.insert(0, str(HERE))
    try:
        from tao_emulator import catalog, nvidia  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    return catalog, nvidia


def _reference_call(func, *args):
    _, nvidia = _emulator()
    nvidia.reference()  # puts the repository on sys.path
    from tests.reference.wheels import ReferenceUnavailable  # noqa: PLC0415

    try:
        return func(*args)
    except ReferenceUnavailable as exc:
        raise BuildError(f"NVIDIA's definitions are not available: {exc}") from None


def definitions(version: str, role: str) -> dict[str, bytes]:
    """The generated files of one image, relative to the package's definitions/ folder (the PyTorch
    image has none: its networks read nvidia_tao_core, see pylib_files)."""
    catalog, nvidia = _emulator()
    if role == "pyt":
        return {}
    return _reference_call(nvidia.generated_files, [catalog.schema_version(version)], role == "deploy")


def pylib_files(version: str) -> dict[str, bytes]:
    """NVIDIA's Python packages an image needs besides the emulator, relative to pylib/: the
    nvidia_tao_core config package for a toolkit with PyTorch networks."""
    catalog, nvidia = _emulator()
    return _reference_call(nvidia.tao_core_files) if catalog.has_pyt_nets(version) else {}


def sources_hash() -> str:
    """Hash of everything that ends up in the images (emulator package, NVIDIA's definitions as
    generated, image recipe)."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    generated: dict[str, bytes] = {}
    for version, role in IMAGES:
        generated.update(definitions(version, role))
        generated.update({f"pylib/{name}": data for name, data in pylib_files(version).items()})
    for name in sorted(generated):
        h.update(name.encode() + b"\0" + generated[name] + b"\0")
    h.update(_dockerfile("BASE", "VER", "ROLE", "HASH").encode())
    h.update(_entry_script().encode())
    h.update(_gpu_script().encode())
    return h.hexdigest()[:20]


def docker_available() -> tuple[bool, str]:
    if shutil.which("docker") is None:
        return False, "the docker CLI is not installed"
    proc = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if proc.returncode != 0:
        return False, proc.stdout.decode("utf-8", "replace").strip()
    return True, proc.stdout.decode().strip()


def _image_label(ref: str, label: str) -> str | None:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{ index .Config.Labels \"%s\" }}" % label, ref],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip()


def _image_id(ref: str) -> str | None:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


# --------------------------------------------------------------------------------------------
# step 1 + 2: root filesystem and base image


def rootfs_tarball(force: bool = False) -> Path:
    mirror = debian_mirror()
    key = rootfs_key(mirror)
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"rootfs-{SUITE}-{key}.tar"
    if tarball.exists() and not force:
        return tarball
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed (apt-get install -y debootstrap)")
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root to create the emulator root filesystem")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
    target = work / "root"
    try:
        _log(f"debootstrap {SUITE} from {mirror} (about a minute, cached afterwards)")
        _run(debootstrap_args(str(target), mirror), quiet=True)
        # Slim it down: package caches and docs are not needed to run the emulator.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                    "usr/share/locale", "usr/share/info"):
            p = target / sub
            if p.is_dir():
                for child in p.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        try:
                            child.unlink()
                        except OSError:
                            pass
        partial = tarball.with_suffix(".tar.partial")
        _run(["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."], quiet=True)
        os.replace(partial, tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def base_image(force: bool = False) -> str:
    key = rootfs_key()
    ref = f"{BASE_REPO}:{key}"
    if not force and _image_id(ref):
        return ref
    tarball = rootfs_tarball()
    _log(f"docker import {tarball.name} as {ref}")
    _run(["docker", "import", "--change", "CMD [\"/bin/bash\"]", str(tarball), ref], quiet=True)
    return ref


# --------------------------------------------------------------------------------------------
# step 3: one image per version and role


def _entry_script() -> str:
    return (
        "#!/usr/bin/python3\n"
        "import os, sys\n"
        "sys.path.insert(0, '/opt/tao_emulator')\n"
        "from tao_emulator.main import entry\n"
        "entry(os.path.basename(sys.argv[0]), sys.argv[1:])\n"
    )


def _gpu_script() -> str:
    """nvidia-smi standing in for the GPU the images would run on: its name and compute capability
    (TAO_EMU_GPU overrides the name, "NAME, CC" as `--query-gpu=name,compute_cap --format=csv,noheader`)."""
    return (
        "#!/usr/bin/python3\n"
        "import os\n"
        "name, _, cc = os.environ.get('TAO_EMU_GPU', 'tltpipe emulator GPU, 0.0').partition(',')\n"
        "print(f'{name.strip()}, {cc.strip() or \"0.0\"}')\n"
    )


def _tensorrt_module(version: str, role: str) -> str:
    """A `tensorrt` Python package that only tells its version, the TensorRT of the image emulated."""
    trt = _emulator()[0].TRT_VERSIONS[(version, role)]
    return f'"""TensorRT as the tltpipe TAO emulator stands it in: its version only."""\n__version__ = "{trt}"\n'


def _dockerfile(base: str, version: str, role: str, src_hash: str) -> str:
    return (
        f"FROM {base}\n"
        "COPY tao_emulator /opt/tao_emulator/tao_emulator\n"
        "COPY pylib/ /opt/tao_emulator/pylib/\n"
        "COPY bin/ /usr/local/bin/\n"
        f"ENV TAO_EMU_VERSION={version} TAO_EMU_ROLE={role} PYTHONPATH=/opt/tao_emulator/pylib "
        "PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8 "
        "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "WORKDIR /workspace\n"
        f"LABEL {HASH_LABEL}={src_hash} org.tltpipe.emulator.version={version} "
        f"org.tltpipe.emulator.role={role}\n"
        'CMD ["/bin/bash"]\n'
    )


def _commands(version: str, role: str) -> list[str]:
    return _emulator()[0].commands(version, role)


def _make_context(version: str, role: str, base: str, src_hash: str) -> Path:
    ctx = Path(tempfile.mkdtemp(prefix="emuctx-"))
    pkg_dst = ctx / "tao_emulator"
    shutil.copytree(PACKAGE, pkg_dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name, data in definitions(version, role).items():
        target = pkg_dst / "definitions" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for p in [pkg_dst, *pkg_dst.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    bindir = ctx / "bin"
    bindir.mkdir()
    os.chmod(bindir, 0o755)
    script = _entry_script()
    for cmd in _commands(version, role):
        path = bindir / cmd
        path.write_text(script)
        os.chmod(path, 0o755)
    smi = bindir / "nvidia-smi"
    smi.write_text(_gpu_script())
    os.chmod(smi, 0o755)
    pylib = ctx / "pylib"
    files = dict(pylib_files(version))
    files["tensorrt/__init__.py"] = _tensorrt_module(version, role).encode()
    for name, data in files.items():
        target = pylib / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for p in [pylib, *pylib.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    (ctx / "Dockerfile").write_text(_dockerfile(base, version, role, src_hash))
    return ctx


def build_image(version: str, role: str, base: str, src_hash: str, force: bool = False) -> str:
    tag = tag_for(version, role)
    if not force and _image_label(tag, HASH_LABEL) == src_hash:
        return tag
    ctx = _make_context(version, role, base, src_hash)
    try:
        _log(f"docker build {tag}")
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        _run(["docker", "build", "-q", "-t", tag, str(ctx)], quiet=True, env=env)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    return tag


def build_all(force: bool = False) -> dict[str, str]:
    ok, detail = docker_available()
    if not ok:
        raise BuildError(f"the Docker engine is not reachable: {detail}")
    base = base_image(force=False)
    src_hash = sources_hash()
    result = {}
    for version, role in IMAGES:
        tag = build_image(version, role, base, src_hash, force=force)
        result[tag] = _image_id(tag) or ""
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild the per-version images")
    parser.add_argument("--refresh-rootfs", action="store_true", help="re-run debootstrap")
    args = parser.parse_args(argv)
    try:
        if args.refresh_rootfs:
            rootfs_tarball(force=True)
            base_image(force=True)
        images = build_all(force=args.force)
    except BuildError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for tag, image_id in images.items():
        print(f"{tag}  {image_id[:19]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
