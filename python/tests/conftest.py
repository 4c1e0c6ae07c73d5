"""What the tests need from outside: the real MovieLens 100K, the `collabgpu` CLI to compare with,
and a GPU adapter. Each one missing skips the tests that need it, saying where it looked, unless
the matching COLLABGPU_REQUIRE_* variable is 1 (CI), where it fails them instead."""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def _required(variable: str) -> bool:
    return os.environ.get(variable) == "1"


def skip_or_fail(variable: str, reason: str) -> None:
    if _required(variable):
        pytest.fail(f"{reason} ({variable}=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ml100k() -> Path:
    """The ML-100K folder: $COLLABGPU_DATA/ml-100k, as the Rust tests look for it."""
    root = os.environ.get("COLLABGPU_DATA")
    if root is None:
        skip_or_fail("COLLABGPU_REQUIRE_DATA", "COLLABGPU_DATA is not set, so there is no ml-100k to test on")
    folder = Path(root) / "ml-100k"
    if not (folder / "u.data").is_file():
        skip_or_fail("COLLABGPU_REQUIRE_DATA", f"no MovieLens 100K at {folder} (u.data missing)")
    return folder


@pytest.fixture(scope="session")
def cli() -> str:
    """The `collabgpu` binary: $COLLABGPU_BIN, else one built in this repository, else on PATH."""
    given = os.environ.get("COLLABGPU_BIN")
    if given:
        if not Path(given).is_file():
            pytest.fail(f"COLLABGPU_BIN={given} is not a file")
        return given
    targets = [Path(os.environ["CARGO_TARGET_DIR"])] if "CARGO_TARGET_DIR" in os.environ else []
    targets.append(REPO / "target")
    for target in targets:
        for profile in ("release", "debug"):
            binary = target / profile / "collabgpu"
            if binary.is_file():
                return str(binary)
    on_path = shutil.which("collabgpu")
    if on_path:
        return on_path
    skip_or_fail(
        "COLLABGPU_REQUIRE_CLI",
        "no collabgpu binary to compare with: set COLLABGPU_BIN or run `cargo build --release`",
    )


@pytest.fixture(scope="session")
def gpu_ok() -> None:
    import collabgpu as cg

    if not cg.adapters():
        skip_or_fail("COLLABGPU_REQUIRE_GPU", "no GPU adapter (install mesa-vulkan-drivers for lavapipe)")


def small_frame(seed: int = 7, users: int = 40, items: int = 25, n: int = 600) -> pd.DataFrame:
    """Seeded ratings with sparse integer user ids and text item ids, each item with one title."""
    rng = np.random.default_rng(seed)
    user_ids = 1000 + 3 * np.arange(users)
    item_names = np.array([f"m{k:02d}" for k in range(items)], dtype=object)
    u = rng.integers(0, users, n)
    i = rng.integers(0, items, n)
    taste = rng.normal(size=users)[u] + rng.normal(size=items)[i]
    rating = np.clip(np.round(3 + taste), 1, 5).astype(np.float32)
    return pd.DataFrame(
        {
            "user": user_ids[u],
            "item": item_names[i],
            "rating": rating,
            "title": [f"Film {name}" for name in item_names[i]],
        }
    )
