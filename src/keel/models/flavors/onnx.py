"""ONNX models, run with onnxruntime on the CPU. The session is built from the model's bytes,
so a model cannot point onnxruntime at external-data files outside its folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.models.flavors._base import Flavor, Loaded, module_of, require

FILE = "model.onnx"
_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def _as_array(values: Any) -> Any:
    import numpy as np

    if isinstance(values, list) and values and isinstance(values[0], dict):
        keys = sorted(values[0])  # skl2onnx ZipMap: one {label: probability} per row
        return np.asarray([[row[k] for k in keys] for row in values])
    return np.asarray(values)


class OnnxFlavor(Flavor):
    name = "onnx"
    packages = ("onnx", "onnxruntime")

    def accepts(self, model: Any) -> bool:
        return module_of(model).startswith("onnx") and type(model).__name__ == "ModelProto"

    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        (folder / FILE).write_bytes(model.SerializeToString())
        return {"file": FILE}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        import numpy as np

        ort = require("onnxruntime", package="onnxruntime", extra="models", purpose="ONNX models")
        try:
            session = ort.InferenceSession(
                (folder / FILE).read_bytes(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InvalidInput(f"not a loadable ONNX model: {exc}", field="model") from exc
        inputs = session.get_inputs()
        outputs = [o.name for o in session.get_outputs()]

        def feed(data: Any) -> dict[str, Any]:
            if len(inputs) == 1:
                arr = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
                return {inputs[0].name: arr.astype(_TYPES.get(inputs[0].type, arr.dtype))}
            if not hasattr(data, "columns"):
                raise InvalidInput(
                    f"this ONNX model takes {len(inputs)} named inputs: pass a table",
                    field="input",
                )
            out = {}
            for i in inputs:
                if i.name not in data.columns:
                    raise InvalidInput("missing column", field=i.name)
                col = data[i.name].to_numpy().reshape(-1, 1)
                out[i.name] = col.astype(_TYPES.get(i.type, col.dtype))
            return out

        def run(data: Any) -> list[Any]:
            return list(session.run(outputs, feed(data)))

        def predict(data: Any) -> Any:
            return _as_array(run(data)[0])

        proba = None
        if len(outputs) > 1:

            def proba(data: Any) -> Any:
                return _as_array(run(data)[1])

        return Loaded(raw=session, predict=predict, predict_proba=proba)
