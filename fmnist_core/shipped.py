"""The models the repository ships (models/shipped.json), kept apart from a user's own registry.

A Docker image holds exactly the shipped models (`prune`, at build time), whatever else the builder's
checkout has trained. The container's registry lives on a volume (FMNIST_MODELS_DIR); at every start
`sync` copies the image's shipped models into it, replaces a shipped model whose files changed, removes
one the image no longer ships (unless it is active), and moves each active pointer to the shipped one
unless the user activated a model of their own. So an upgraded image brings its models, and a volume
keeps what its user trained and chose.

    python -m fmnist_core.shipped prune [MODELS_DIR]            # drop every model the manifest does not name
    python -m fmnist_core.shipped sync SOURCE_DIR TARGET_DIR    # bring the shipped models into a registry
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from fmnist_core import registry
from fmnist_core.config import REPO_ROOT
from fmnist_core.fsutil import atomic_write_json, read_json

MANIFEST_FILE = "shipped.json"
SYNC_RECORD = ".shipped-sync.json"  # in the target registry: what the last sync brought (ids, active ids)
KINDS = {"cnn": ("", registry.MODEL_FILE), "photo": ("photo", "head.npz")}  # sub-directory, model file


@dataclass(frozen=True)
class ShippedKind:
    """One registry's shipped models: their ids and the one that is active out of the box."""

    models: tuple[str, ...]
    active: str


def read_manifest(root: Path = REPO_ROOT / "models") -> dict[str, ShippedKind]:
    """The manifest of a models directory, checked: every id valid, the active one among the models."""
    try:
        data = read_json(Path(root) / MANIFEST_FILE)
        manifest = {kind: ShippedKind(tuple(registry.validate_model_id(i) for i in data[kind]["models"]),
                                      registry.validate_model_id(data[kind]["active"])) for kind in KINDS}
    except (OSError, ValueError, KeyError, TypeError, registry.RegistryError) as error:
        raise registry.RegistryError(f"{Path(root) / MANIFEST_FILE} is missing or malformed ({error})") from None
    for kind, shipped in manifest.items():
        if shipped.active not in shipped.models:
            raise registry.RegistryError(f"{MANIFEST_FILE}: the active {kind} model {shipped.active} is not shipped")
    return manifest


def model_digest(directory: Path) -> str:
    """sha256 over a model directory's file names and contents: tells whether a shipped model changed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _registry_dirs(kind: str, root: Path) -> tuple[Path, str]:
    sub, model_file = KINDS[kind]
    return (Path(root) / sub if sub else Path(root)), model_file


def prune(root: Path = REPO_ROOT / "models") -> list[str]:
    """Keep only the manifest's models in a models directory and point each registry at its shipped active one."""
    manifest = read_manifest(root)
    removed = []
    for kind, shipped in manifest.items():
        directory, model_file = _registry_dirs(kind, root)
        for entry in sorted(directory.iterdir()):
            if entry.is_dir() and entry.name not in registry.RESERVED_NAMES and entry.name not in shipped.models:
                shutil.rmtree(entry)
                removed.append(f"{kind}/{entry.name}")
        for model_id in shipped.models:
            if not (directory / model_id / model_file).is_file():
                raise registry.RegistryError(f"shipped {kind} model {model_id} is missing from {directory}")
        registry.set_active(shipped.active, directory, model_file=model_file)
    return removed


def _copy_in(source: Path, target_dir: Path, model_id: str) -> None:
    """Copy one model directory into a registry in one rename, replacing an older copy."""
    staging = target_dir / f".tmp-shipped-{model_id}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(source, staging)
    final = target_dir / model_id
    if final.exists():
        old = target_dir / f".tmp-replaced-{model_id}-{uuid.uuid4().hex[:6]}"
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)


def sync(source: Path, target: Path) -> list[str]:
    """Bring source's shipped models into the registry at target; returns one line per change made."""
    manifest = read_manifest(source)
    record_path = Path(target) / SYNC_RECORD
    try:
        record = read_json(record_path)
    except (OSError, ValueError):
        record = {}
    changes = []
    for kind, shipped in manifest.items():
        source_dir, model_file = _registry_dirs(kind, source)
        target_dir, _ = _registry_dirs(kind, target)
        target_dir.mkdir(parents=True, exist_ok=True)
        before = record.get(kind) or {}
        for model_id in shipped.models:
            there = target_dir / model_id
            if not there.is_dir() or model_digest(there) != model_digest(source_dir / model_id):
                changes.append(f"{kind}: {'updated' if there.is_dir() else 'added'} shipped model {model_id}")
                _copy_in(source_dir / model_id, target_dir, model_id)
        active = registry.get_active_id(target_dir)
        for model_id in set(before.get("models", [])) - set(shipped.models):
            if model_id != active and (target_dir / model_id).is_dir():
                registry.delete_model(model_id, target_dir)
                changes.append(f"{kind}: removed {model_id}, no longer shipped")
        usable = active is not None and (target_dir / active / model_file).is_file()
        if not usable or active == before.get("active"):  # the user kept the shipped default (or has none)
            if active != shipped.active:
                registry.set_active(shipped.active, target_dir, model_file=model_file)
                changes.append(f"{kind}: active model is now the shipped {shipped.active}")
    atomic_write_json(record_path, {kind: {"models": list(s.models), "active": s.active}
                                    for kind, s in manifest.items()})
    return changes


def main(argv: list[str] | None = None) -> int:
    """prune [MODELS_DIR] | sync SOURCE TARGET; prints what changed."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["prune"] and len(args) <= 2:
            lines = [f"removed {name}" for name in prune(Path(args[1]) if len(args) == 2 else REPO_ROOT / "models")]
        elif args[:1] == ["sync"] and len(args) == 3:
            lines = sync(Path(args[1]), Path(args[2]))
        else:
            print("\n".join(__doc__.strip().splitlines()[-2:]), file=sys.stderr)
            return 2
    except (registry.RegistryError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines) or "shipped models: nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
