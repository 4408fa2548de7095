"""Project roles: grants, global admins, and tokens capped by their ceiling and project scope."""

from __future__ import annotations

import pytest
from auth_support import PASSWORD

from keel.auth import AuthStore, Principal, Role
from keel.errors import InvalidInput, NotFound

V, E, M, A = Role.VIEWER, Role.EDITOR, Role.MAINTAINER, Role.ADMIN


def test_roles_are_ordered_and_parse() -> None:
    assert V < E < M < A
    assert Role.parse("Maintainer") is M and Role.parse(2) is E and Role.parse(A) is A
    for bad in ("owner", 0, 5, True, None):
        with pytest.raises(InvalidInput) as info:
            Role.parse(bad)  # type: ignore[arg-type]
        assert info.value.field == "role"


@pytest.fixture
def people(store: AuthStore) -> dict[str, Principal]:
    store.create_user("root", PASSWORD, is_admin=True)
    store.create_user("ed", PASSWORD)
    store.create_user("nobody", PASSWORD)
    store.grant("churn", "ed", "editor", actor="root")
    store.grant("fraud", "ed", Role.MAINTAINER)
    return {name: store.login(name, PASSWORD, address="a") for name in ("root", "ed", "nobody")}


# (user, token ceiling, token projects) -> expected role on churn, fraud, other
MATRIX = [
    ("root", None, None, (A, A, A)),
    ("root", E, None, (E, E, E)),
    ("root", A, ("churn",), (A, None, None)),
    ("ed", None, None, (E, M, None)),
    ("ed", V, None, (V, V, None)),
    ("ed", A, None, (E, M, None)),  # a high ceiling never raises the user's own role
    ("ed", M, ("fraud",), (None, M, None)),
    ("ed", A, ("other",), (None, None, None)),  # scope to a project the user cannot reach
    ("nobody", None, None, (None, None, None)),
    ("nobody", A, None, (None, None, None)),
]


@pytest.mark.parametrize(("user", "ceiling", "scope", "expected"), MATRIX)
def test_role_resolution_matrix(
    store: AuthStore,
    people: dict[str, Principal],
    user: str,
    ceiling: Role | None,
    scope: tuple[str, ...] | None,
    expected: tuple[Role | None, ...],
) -> None:
    principal = people[user]
    if ceiling is not None:
        token, _ = store.create_token(user, name="t", role=ceiling, projects=scope)
        principal = store.authenticate_token(token)
    got = tuple(store.role_in(principal, p) for p in ("churn", "fraud", "other"))
    assert got == expected


def test_token_is_global_admin_only_when_unscoped_with_admin_ceiling(
    store: AuthStore, people: dict[str, Principal]
) -> None:
    assert people["root"].is_admin and not people["ed"].is_admin
    full, _ = store.create_token("root", name="full", role="admin")
    capped, _ = store.create_token("root", name="capped", role="maintainer")
    scoped, _ = store.create_token("root", name="scoped", role="admin", projects=["churn"])
    ed_admin, _ = store.create_token("ed", name="ed", role="admin")
    assert store.authenticate_token(full).is_admin
    for token in (capped, scoped, ed_admin):
        assert not store.authenticate_token(token).is_admin


def test_grants_change_roles_at_once(store: AuthStore, people: dict[str, Principal]) -> None:
    ed = people["ed"]
    store.grant("churn", "ED", Role.VIEWER)  # replaces the editor grant
    assert store.role_in(ed, "churn") is V
    store.revoke("churn", "ed", actor="root")
    assert store.role_in(ed, "churn") is None
    with pytest.raises(NotFound, match="no role"):
        store.revoke("churn", "ed")
    store.disable_user("ed")
    assert store.role_in(ed, "fraud") is None  # a principal of a disabled user has nothing
    grants = [(g.project, g.username, g.role) for g in store.list_grants()]
    assert grants == [("fraud", "ed", M)]
    actions = [(r.action, r.resource, r.detail) for r in store.audit_search(action="grant.*")]
    assert actions[0] == ("grant.revoke", "project:churn", {"username": "ed"})
    assert actions[1] == ("grant.set", "project:churn", {"role": "viewer", "username": "ed"})


def test_project_names_follow_the_tracking_rule(
    store: AuthStore, people: dict[str, Principal]
) -> None:
    # Exact comparison, as tracking does: "Churn" is another project than "churn".
    assert store.role_in(people["ed"], "Churn") is None
    store.grant("Churn Model (v2)", "ed", "viewer")
    assert store.role_in(people["ed"], "Churn Model (v2)") is V
    for bad in ("", "   ", "x" * 251, "tab\there"):
        with pytest.raises(InvalidInput) as info:
            store.grant(bad, "ed", "viewer")
        assert info.value.field == "project"
        with pytest.raises(InvalidInput):
            store.role_in(people["ed"], bad)
    with pytest.raises(NotFound):
        store.grant("churn", "ghost", "viewer")


def test_visible_projects(store: AuthStore, people: dict[str, Principal]) -> None:
    assert store.visible_projects(people["root"]) is None  # everything
    assert store.visible_projects(people["ed"]) == {"churn": E, "fraud": M}
    assert store.visible_projects(people["nobody"]) == {}
    token, _ = store.create_token("ed", name="t", role="viewer", projects=["fraud"])
    assert store.visible_projects(store.authenticate_token(token)) == {"fraud": V}
    token, _ = store.create_token("root", name="t", role="editor", projects=["x"])
    assert store.visible_projects(store.authenticate_token(token)) == {"x": E}
