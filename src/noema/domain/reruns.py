"""Running an earlier generation again: the inputs it reuses and the files that must come again.

One plan for every door (the API's rerun, the web page's "Run again", the chat buttons). A file is
never taken from the record: what was stored is the backend's copy of it, or only a note that a
file was uploaded, so the caller gives the file again (a chat still has the message it came with)
or the run cannot start.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from noema.domain.generation import Generation
from noema.domain.tools import InputType, Tool, ToolInput


@dataclass(frozen=True)
class RerunPlan:
    """The tool to run again, the inputs it reuses, and its file inputs (to be given again)."""

    tool: Tool
    inputs: dict[str, Any]
    files: tuple[ToolInput, ...]

    def missing_file(self, given: Collection[str]) -> ToolInput | None:
        """The first required file input not among ``given`` (input names); None when the run can start."""
        return next((spec for spec in self.files if spec.required and spec.name not in given), None)


def plan_rerun(tool: Tool, earlier: Generation, *, new_seed: bool = False) -> RerunPlan:
    """``earlier`` again on ``tool``: its recorded seed reproduces it, ``new_seed`` leaves seeds out (drawn afresh).

    Inputs the tool no longer has are left out, and so is every file input.
    """
    files = tuple(spec for spec in tool.inputs if spec.type.is_media)
    dropped = {spec.name for spec in files} | {
        spec.name for spec in tool.inputs if new_seed and spec.type is InputType.SEED
    }
    inputs = {k: v for k, v in earlier.inputs.items() if k not in dropped and tool.input(k) is not None}
    return RerunPlan(tool=tool, inputs=inputs, files=files)
