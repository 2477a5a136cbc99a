"""`sora-mcp ARGS` (its real entry point, e.g. `serve` over this process's stdio), noting in the
file LOG, line by line as it happens, the first import of each library or module in WATCHED.

    python tests/serve_noting_imports.py LOG ARGS...

An import is noted the moment it starts, before the import returns, so a client that has had an
answer and then reads LOG sees every watched import made before that answer. Used by
`test_lazy_start.py`; the server itself has no such switch.
"""

from __future__ import annotations

import sys
from typing import Any

# The media libraries, the emulator, and the people's commands (`serve` never runs them).
WATCHED = ("av", "PIL", "numpy", "sora_mcp.emulator.app", "sora_mcp.cli.people")


def _note_imports(log_path: str) -> None:
    seen: set[str] = set()
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115  (open for the life of the process)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "import":
            return
        name = str(args[0])
        watched = next((w for w in WATCHED if name == w or name.startswith(w + ".")), None)
        if watched is not None and watched not in seen:
            seen.add(watched)
            log.write(watched + "\n")
            log.flush()

    sys.addaudithook(hook)


if __name__ == "__main__":
    _note_imports(sys.argv[1])
    from sora_mcp.cli import main

    raise SystemExit(main(sys.argv[2:]))
