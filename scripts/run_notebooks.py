#!/usr/bin/env python3
"""Execute every notebook in notebooks/ top to bottom, headless; exit non-zero on the first error.

Executed copies (with outputs) go to var/notebooks/; the committed notebooks stay output-free. Charts are written to
docs/ml/ by the notebooks themselves.
"""
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def main(names: list[str]) -> int:
    notebooks = [ROOT / "notebooks" / n for n in names] if names else sorted((ROOT / "notebooks").glob("*.ipynb"))
    out_dir = ROOT / "var" / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        began = time.monotonic()
        client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        except CellExecutionError as exc:
            nbformat.write(notebook, out_dir / path.name)
            print(f"FAILED {path.relative_to(ROOT)}: {exc}", file=sys.stderr)
            return 1
        nbformat.write(notebook, out_dir / path.name)
        print(f"ok {path.relative_to(ROOT)} ({time.monotonic() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
