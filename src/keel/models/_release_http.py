"""``HttpReleaseStore``: a team server's model releases (evaluations, approvals, promotion
decisions, card fields), over HTTP.

With ``KEEL_TRACKING_URI=http(s)://…``, ``keel.models.promote`` judges the gates where it runs
(the model loaded and the data read through the server, each file checked against its
digest) and records the decision here, as the local promotion does; the server
(``keel.server.routes.models``) records it under the signed-in user, never under a name the
client sends, and only for a maintainer. Approvals are made on the server, which checks the
approver is not the author.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keel._http import ServerBacked
from keel.errors import InvalidInput
from keel.models._gates import GateResult
from keel.models._http import API, decoded
from keel.models._release_base import ReleaseStore
from keel.models._release_records import (
    Approval,
    EvaluationResult,
    PromotionDecision,
    evaluation_from_parts,
)


def approval_to_wire(a: Approval) -> dict[str, Any]:
    return {"name": a.name, "version": a.version, **a.to_dict()}


def approval_from_wire(d: Mapping[str, Any]) -> Approval:
    return Approval(
        name=d["name"],
        version=int(d["version"]),
        user=d["user"],
        comment=d["comment"],
        created_ms=int(d["created_ms"]),
    )


def decision_from_wire(d: Mapping[str, Any]) -> PromotionDecision:
    """A decision from a body (untrusted on the server: malformed is ``InvalidInput``)."""

    def build() -> PromotionDecision:
        gates = d.get("gates") or []
        if not isinstance(gates, list):
            raise InvalidInput("must be a list", field="gates")
        previous = d.get("previous_version")
        return PromotionDecision(
            id=str(d["id"]),
            name=str(d["name"]),
            version=int(d["version"]),
            alias=str(d["alias"]),
            action=str(d["action"]),
            passed=bool(d["passed"]),
            moved=bool(d.get("moved", False)),
            actor=str(d.get("actor", "")),
            gates=tuple(GateResult.from_dict(g) for g in gates),
            previous_version=None if previous is None else int(previous),
            dataset=d.get("dataset"),
            evaluation_id=d.get("evaluation_id"),
            override_reason=d.get("override_reason"),
            source=str(d.get("source", "")),
            created_ms=int(d.get("created_ms", 0)),
        )

    return decoded(build)


def evaluation_from_wire(d: Mapping[str, Any]) -> EvaluationResult:
    return decoded(lambda: evaluation_from_parts(d, d.get("metrics") or {}, d))


class HttpReleaseStore(ServerBacked, ReleaseStore):
    """The release store behind the Keel server at ``url`` (token: ``KEEL_TOKEN``)."""

    @staticmethod
    def _of(name: str, version: int | None) -> dict[str, Any]:
        return {"name": name} if version is None else {"name": name, "version": version}

    def save_evaluation(self, result: EvaluationResult) -> EvaluationResult:
        got = self.http.call(
            "POST", f"{API}/evaluations", body=result.to_dict(), idempotent_create=True
        )
        return evaluation_from_wire(got)

    def list_evaluations(self, name: str, version: int | None = None) -> list[EvaluationResult]:
        got = self.http.call("GET", f"{API}/evaluations", params=self._of(name, version))
        return [evaluation_from_wire(e) for e in got["evaluations"]]

    def add_approval(self, name: str, version: int, *, user: str, comment: str = "") -> Approval:
        # The server approves as the signed-in user; ``user`` is what the caller believes it is.
        del user
        body = {"name": name, "version": version, "comment": comment}
        return approval_from_wire(self.http.call("POST", f"{API}/approvals", body=body))

    def list_approvals(self, name: str, version: int) -> list[Approval]:
        got = self.http.call("GET", f"{API}/approvals", params=self._of(name, version))
        return [approval_from_wire(a) for a in got["approvals"]]

    def save_decision(self, decision: PromotionDecision) -> PromotionDecision:
        got = self.http.call(
            "POST", f"{API}/decisions", body=decision.to_dict(), idempotent_create=True
        )
        return decision_from_wire(got)

    def mark_moved(self, decision_id: str) -> PromotionDecision:
        got = self.http.call("POST", f"{API}/decisions/moved", body={"id": decision_id})
        return decision_from_wire(got)

    def list_decisions(self, name: str, version: int | None = None) -> list[PromotionDecision]:
        got = self.http.call("GET", f"{API}/decisions", params=self._of(name, version))
        return [decision_from_wire(d) for d in got["decisions"]]

    def set_card_fields(self, name: str, version: int, fields: Mapping[str, str]) -> None:
        body = {"name": name, "version": version, "fields": dict(fields)}
        self.http.call("PUT", f"{API}/cards", body=body)

    def card_fields(self, name: str, version: int) -> dict[str, tuple[str, int]]:
        got = self.http.call("GET", f"{API}/cards", params=self._of(name, version))
        return {k: (str(v[0]), int(v[1])) for k, v in got["fields"].items()}
