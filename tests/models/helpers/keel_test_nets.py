"""Model code that tests log and load by class path (this folder is put on sys.path)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import keel


class TinyNet(torch.nn.Module):
    def __init__(self, n_in: int = 3, hidden: int = 4) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(n_in, hidden)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.layer(x)))


class Scaler(keel.PythonModel):
    """Multiplies column ``x`` by a factor from its config and adds an offset read from a file."""

    def __init__(self, factor: float = 1.0, offset_file: str | None = None) -> None:
        self.factor = factor
        self.offset_file = offset_file
        self.offset = 0.0

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor}

    def artifacts(self) -> Mapping[str, str | Path]:
        return {"offset": self.offset_file} if self.offset_file else {}

    def load_context(self, artifacts: Mapping[str, Path]) -> None:
        if "offset" in artifacts:
            self.offset = float(artifacts["offset"].read_text())

    def predict(self, model_input: Any) -> Any:
        return np.asarray(model_input["x"], dtype=float) * self.factor + self.offset


MARKER_ENV = "KEEL_TEST_MARKER"


class Payload:
    """Unpickling this creates the folder named by its ``marker`` (a stand-in for any code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return (os.mkdir, (self.marker,))

    def predict(self, x: Any) -> Any:
        return x


class Snitch:
    """A plain object that records (in ``KEEL_TEST_MARKER``) if it is ever rebuilt."""

    def __init__(self) -> None:
        self.value = 1

    def __setstate__(self, state: dict[str, Any]) -> None:
        import os

        Path(os.environ[MARKER_ENV]).write_text("constructed")
        self.__dict__.update(state)


class Echo:
    """Picklable by reference (module-level): ``predict`` returns its input doubled."""

    def predict(self, x: Any) -> Any:
        return np.asarray(x) * 2
