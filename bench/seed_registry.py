"""Seed a registry with N finished video records, the way a busy user's looks after months.

    python bench/seed_registry.py FOLDER [--count 100000]

Every record is terminal (completed, failed or deleted), so a server started on the folder has
nothing to resume and its start measures the registry alone. About one in ten is an extension,
remix or edit of an earlier video (lineage), one in twenty uses a character, one in fifty belongs
to a batch; prompts come from a small vocabulary so text filters match a realistic share. The
records are written through `Registry.record_intents` in chunks, so the query index is built the
way the server builds it.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry

SUBJECTS = ["lighthouse", "heron", "city street", "red fox", "coffee cup", "mountain lake", "robot", "kite"]
MOODS = ["at dusk", "in the rain", "slow dolly in", "handheld", "golden hour", "macro", "drone shot"]
CHUNK = 1_000


def _record(n: int, rng: random.Random, start: float) -> VideoRecord:
    created = start + n * 30.0
    relation = rng.choices(["generate", "extension", "remix", "edit"], weights=[90, 5, 3, 2])[0]
    parent = f"video_{rng.randrange(n):08d}" if relation != "generate" and n else None
    status = rng.choices(["completed", "failed", "deleted"], weights=[90, 7, 3])[0]
    return VideoRecord(
        local_id=f"{n:032x}",
        id=f"video_{n:08d}",
        backend="emulator",
        model=rng.choice(["sora-2", "sora-2", "sora-2-pro"]),
        prompt=f"{rng.choice(SUBJECTS)} {rng.choice(MOODS)}, take {n}",
        size="1280x720",
        seconds=rng.choice([4, 8, 12]),
        status=status,  # type: ignore[arg-type]
        progress=100 if status == "completed" else 0,
        created_at=created,
        updated_at=created + 120,
        parent_id=parent if relation != "generate" else None,
        relation=relation if parent else "generate",  # type: ignore[arg-type]
        character_ids=[f"char_{n % 7}"] if n % 20 == 0 else [],
        batch_id=f"batch{n // 50:05d}" if n % 50 < 1 else None,
        estimated_cost_usd=0.4,
    )


def seed(folder: Path, count: int, *, seed_value: int = 7) -> float:
    """Write `count` records into the registry in `folder`; returns the seconds it took."""
    rng = random.Random(seed_value)
    start = time.time() - 30.0 * count - 86_400  # all before today: today's spend stays 0
    began = time.perf_counter()
    with Registry.open(folder) as registry:
        for first in range(0, count, CHUNK):
            registry.record_intents([_record(n, rng, start) for n in range(first, min(count, first + CHUNK))])
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    took = seed(args.folder, args.count)
    print(f"seeded {args.count} video records into {args.folder} in {took:.1f} s")


if __name__ == "__main__":
    main()
