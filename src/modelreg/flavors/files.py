"""The files flavor: a version made of plain files and directories, loaded as its folder.

A version registered from paths has no ``flavor.json``; ``modelreg.load`` returns the
folder it was pulled into, and the caller reads the files however it likes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from modelreg.manifest import collect_files


class FilesFlavor:
    name = "files"

    def detect(self, obj: Any) -> bool:
        return False  # paths are registered as files without a flavor; objects are not files

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        """Copy a path, a list of paths or a mapping (as ``register`` takes them)."""
        for name, source in collect_files(obj).items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(os.fspath(source), target)
        return {}

    def libraries(self, obj: Any) -> dict[str, str]:
        return {}

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Path:
        return directory
