"""Serving: the inference app (MLflow ``/invocations``, Open Inference Protocol v2,
Prometheus ``/metrics``), adaptive micro-batching, and the hosts that own loaded models.
See ``docs/serving.md``. ``import keel.serving`` loads nothing heavy; names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.serving._app import create_serving_app
    from keel.serving._batcher import ModelFailed, Overloaded, PredictTimeout
    from keel.serving._host import ModelHost, Predictor
    from keel.serving._payload import Inputs, MalformedRequest
    from keel.serving._record import PredictionHook, PredictionRecord
    from keel.serving._settings import ServingSettings

__all__ = [
    "Inputs",
    "MalformedRequest",
    "ModelFailed",
    "ModelHost",
    "Overloaded",
    "PredictTimeout",
    "PredictionHook",
    "PredictionRecord",
    "Predictor",
    "ServingSettings",
    "create_serving_app",
]

_LAZY: dict[str, str] = {
    "create_serving_app": "keel.serving._app",
    "ModelFailed": "keel.serving._batcher",
    "Overloaded": "keel.serving._batcher",
    "PredictTimeout": "keel.serving._batcher",
    "ModelHost": "keel.serving._host",
    "Predictor": "keel.serving._host",
    "Inputs": "keel.serving._payload",
    "MalformedRequest": "keel.serving._payload",
    "PredictionHook": "keel.serving._record",
    "PredictionRecord": "keel.serving._record",
    "ServingSettings": "keel.serving._settings",
}

# --- loop (SERVE-LOOP: prediction log, feedback, deployments) -----------------------------------
# Names added here by the serving-loop work; this block is theirs to edit.
if TYPE_CHECKING:
    from keel.monitoring._feedback import (
        Feedback,
        FeedbackResult,
        SqlFeedbackStore,
        feedback,
        open_feedback_store,
        upload_feedback,
    )
    from keel.monitoring._predlog import read_predictions
    from keel.serving._deployments import (
        Deployment,
        DeploymentChange,
        Deployments,
        DeploymentSettings,
        Mode,
        Role,
        open_deployments,
    )
    from keel.serving._feedback_routes import feedback_router
    from keel.serving._predlog import PredictionLogWriter, PredictionRow
    from keel.serving._routing import RoutePlan, plan, route

_LAZY.update(
    {
        "Deployment": "keel.serving._deployments",
        "DeploymentChange": "keel.serving._deployments",
        "DeploymentSettings": "keel.serving._deployments",
        "Deployments": "keel.serving._deployments",
        "Mode": "keel.serving._deployments",
        "Role": "keel.serving._deployments",
        "open_deployments": "keel.serving._deployments",
        "RoutePlan": "keel.serving._routing",
        "plan": "keel.serving._routing",
        "route": "keel.serving._routing",
        "PredictionLogWriter": "keel.serving._predlog",
        "PredictionRow": "keel.serving._predlog",
        "read_predictions": "keel.monitoring._predlog",
        "Feedback": "keel.monitoring._feedback",
        "FeedbackResult": "keel.monitoring._feedback",
        "SqlFeedbackStore": "keel.monitoring._feedback",
        "feedback": "keel.monitoring._feedback",
        "open_feedback_store": "keel.monitoring._feedback",
        "upload_feedback": "keel.monitoring._feedback",
        "feedback_router": "keel.serving._feedback_routes",
    }
)
__all__ += [
    "Deployment",
    "DeploymentChange",
    "DeploymentSettings",
    "Deployments",
    "Feedback",
    "FeedbackResult",
    "Mode",
    "PredictionLogWriter",
    "PredictionRow",
    "Role",
    "RoutePlan",
    "SqlFeedbackStore",
    "feedback",
    "feedback_router",
    "open_deployments",
    "open_feedback_store",
    "plan",
    "read_predictions",
    "route",
    "upload_feedback",
]
# --- end loop ------------------------------------------------------------------------------------

# Deployments served: endpoints (champion/challenger routing), hot swap, the keel serve factory.
if TYPE_CHECKING:
    from keel.serving._endpoint import ROUTE_KEY_HEADER, Answer, Endpoint
    from keel.serving._factory import ServeSpec, build_app
    from keel.serving._reload import Target, alias_source, deployment_source

_LAZY.update(
    {
        "ROUTE_KEY_HEADER": "keel.serving._endpoint",
        "Answer": "keel.serving._endpoint",
        "Endpoint": "keel.serving._endpoint",
        "ServeSpec": "keel.serving._factory",
        "build_app": "keel.serving._factory",
        "Target": "keel.serving._reload",
        "alias_source": "keel.serving._reload",
        "deployment_source": "keel.serving._reload",
    }
)
__all__ += [
    "ROUTE_KEY_HEADER",
    "Answer",
    "Endpoint",
    "ServeSpec",
    "Target",
    "alias_source",
    "build_app",
    "deployment_source",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.serving' has no attribute {name!r}")
