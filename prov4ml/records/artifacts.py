"""The run's artifact store: copies of files, model state, hashes."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any, Optional

from .._fs import atomic_write, hash_path
from ..context import Context
from ..exceptions import ArtifactError, InvalidValueError
from .model import ArtifactRecord

__all__ = ["ArtifactStore", "check_artifact_name"]


def check_artifact_name(name: str) -> str:
    """Refuse names that would escape the artifacts folder; shorten parts a file system cannot hold."""
    pure = PurePath(name)
    if not name or pure.is_absolute() or ".." in pure.parts:
        raise ArtifactError(
            f"artifact name {name!r} must be a relative path without '..' "
            "(it is stored under the run's artifacts/ folder); pass e.g. 'plots/loss.png'"
        )
    return PurePath(*(_short_part(p) for p in pure.parts)).as_posix()


def _short_part(part: str) -> str:
    """A path part of at most ~100 bytes: a long one keeps its start and suffix, with a hash between."""
    if len(part.encode("utf-8", "surrogatepass")) <= 100:
        return part
    import hashlib

    suffix = PurePath(part).suffix
    suffix = suffix if len(suffix) <= 16 else ""
    digest = hashlib.sha1(part.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{part.encode('utf-8')[:60].decode('utf-8', 'ignore')}-{digest}{suffix}"


class ArtifactStore:
    """Stores files under ``<run_dir>/artifacts`` (``artifacts/rank<k>`` for ranks > 0) without ever overwriting one."""

    def __init__(self, run_dir: Path, rank: int = 0) -> None:
        self.run_dir = run_dir
        self.root = run_dir / "artifacts" if rank == 0 else run_dir / "artifacts" / f"rank{rank}"

    def _free(self, name: str) -> Path:
        target = self.root / name
        stem, suffix, n = target.stem, target.suffix, 1
        while target.exists():
            target = target.with_name(f"{stem}_{n}{suffix}")
            n += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _record(self, target: Path, original: Optional[Path], name: str, context, step, time, role) -> ArtifactRecord:
        digest, size = hash_path(target)
        return ArtifactRecord(
            name=name,
            location=target.relative_to(self.run_dir).as_posix(),
            original=str(original) if original is not None else None,
            sha256=digest,
            size=size,
            is_dir=target.is_dir(),
            context=context,
            step=step,
            time=time or datetime.now(timezone.utc),
            role=role,
        )

    def copy(
        self,
        source: Path,
        name: Optional[str] = None,
        context: Optional[Context] = None,
        step: Optional[int] = None,
        time: Optional[datetime] = None,
        role: str = "artifact",
    ) -> ArtifactRecord:
        """Copy a file or directory in; the copy's hash and size are recorded."""
        if not _exists(source):
            raise ArtifactError(
                f"artifact path {str(source)!r} does not exist; check the path "
                f"(relative paths are resolved from {Path.cwd()})"
            )
        if source.is_dir() and _inside(self.run_dir, source):
            raise ArtifactError(
                f"artifact path {str(source)!r} holds the run directory {self.run_dir}: copying it would copy the run "
                "into itself; log a folder that does not contain provenance_save_dir"
            )
        name = check_artifact_name(name or source.name)
        target = self._free(_with_suffix(name, source))
        # Copied under a temporary name, then renamed: a kill never leaves half a file under the real name.
        if source.is_dir():
            partial = target.with_name(f".{target.name}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(source, partial)
            os.rename(partial, target)
        else:
            atomic_write(target, lambda fh: _copy_into(source, fh))
            shutil.copystat(source, target)
        return self._record(target, source.resolve(), name, context, step, time, role)

    def reference(
        self, source: Path, name: Optional[str] = None, context=None, step=None, time=None, role: str = "artifact"
    ) -> ArtifactRecord:
        """Record a file where it is, without copying it: its location is its absolute path."""
        if not _exists(source):
            raise ArtifactError(f"artifact path {str(source)!r} does not exist; check the path")
        digest, size = hash_path(source)
        return ArtifactRecord(
            name=name or source.name, location=str(source.resolve()), original=str(source.resolve()),
            sha256=digest, size=size, is_dir=source.is_dir(), context=context, step=step,
            time=time or datetime.now(timezone.utc), role=role,
        )

    def write_text(self, name: str, text: str, context=None, step=None, role: str = "artifact") -> ArtifactRecord:
        target = self._free(check_artifact_name(name))
        atomic_write(target, lambda fh: fh.write(text.encode("utf-8")))
        return self._record(target, None, name, context, step, None, role)

    def new_path(self, name: str) -> Path:
        """A path under the artifacts folder that no file uses yet, for a file or folder the caller writes."""
        return self._free(check_artifact_name(name))

    def record_written(self, target: Path, context=None, step=None, role: str = "artifact") -> ArtifactRecord:
        """Record a file or folder written at a ``new_path``, with its hash and size as they are now."""
        if not _inside(target, self.root):
            raise ArtifactError(f"{target} is not under {self.root}; write it at ArtifactStore.new_path(name)")
        if not _exists(target):
            raise ArtifactError(f"{target} does not exist: write it before recording it")
        name = target.resolve().relative_to(self.root.resolve()).as_posix()
        return self._record(target, None, name, context, step, None, role)

    def save_state(
        self, obj: Any, name: str, context=None, step=None, time=None, role: str = "model_version"
    ) -> ArtifactRecord:
        """``torch.save`` a state dict (or object) atomically."""
        import torch  # only a model brings us here, so torch is already imported

        target = self._free(check_artifact_name(name))
        try:
            atomic_write(target, lambda fh: torch.save(obj, fh))
        except OSError:
            raise
        except Exception as exc:  # torch.save pickles: a lambda, a lock, an open file cannot be saved
            raise InvalidValueError(
                f"cannot save {type(obj).__name__} as {name!r}: {exc}; pass a torch.nn.Module or its state_dict()"
            ) from None
        return self._record(target, None, name, context, step, time, role)


def _with_suffix(name: str, source: Path) -> str:
    """``log_artifact("tmp", "tmp.png")`` stores ``tmp.png``: a name without a suffix keeps the file's."""
    if not PurePath(name).suffix and source.suffix and not source.is_dir():
        return name + source.suffix
    return name


def _copy_into(source: Path, fh) -> None:
    with open(source, "rb") as src:
        shutil.copyfileobj(src, fh, 1 << 20)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as exc:  # a name too long, a permission problem on a parent folder
        raise ArtifactError(f"artifact path {str(path)[:200]!r} cannot be read: {exc.strerror or exc}") from None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
