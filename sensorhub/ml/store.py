"""Model artifacts on disk: written atomically as .joblib with a SHA-256, loaded once per process and verified.

The one small interface the ML apps save and load through; the MLflow registry will sit behind it later.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import joblib
from django.conf import settings


class ArtifactError(Exception):
    pass


def model_dir() -> Path:
    path = Path(settings.SENSORHUB_MODEL_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_save(obj, *, name: str) -> tuple[str, str]:
    """Write ``obj`` to ``<model dir>/<name>.joblib`` via a temp file and rename; returns (relative path, sha256)."""
    target = model_dir() / f"{name}.joblib"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(obj, temp, compress=3)
        digest = sha256_of(Path(temp))
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return str(target.relative_to(model_dir())), digest


@lru_cache(maxsize=256)
def artifact_load(relative_path: str, sha256: str):
    """Load and verify an artifact; cached per process by (path, hash), so a new version is a cache miss."""
    path = model_dir() / relative_path
    if not path.exists():
        raise ArtifactError(f"model artifact {path} is missing")
    actual = sha256_of(path)
    if actual != sha256:
        raise ArtifactError(f"model artifact {path} has SHA-256 {actual[:12]}…, expected {sha256[:12]}…")
    return joblib.load(path)
