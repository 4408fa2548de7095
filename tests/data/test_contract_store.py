"""Contracts on stored datasets: versioned texts, validating a version, quarantine."""

from __future__ import annotations

import pandas as pd
import pytest

import keel.data
from keel.data._contract import Contract
from keel.data._contract_store import (
    infer_dataset_contract,
    load_contract,
    save_contract,
    validate_dataset,
)
from keel.errors import InvalidInput, NotFound


def test_infer_save_load_validate_quarantine() -> None:
    good = pd.DataFrame({"id": [1, 2, 3, 4], "amount": [1.0, 2.0, 3.0, 4.0]})
    keel.data.add(good, name="orders", key="id")
    contract = infer_dataset_contract("orders@v1")
    assert contract.name == "orders" and contract.key == ("id",)
    assert save_contract("orders", contract) == 1
    edited = contract.to_yaml() + "# hand-edited\n"
    assert save_contract("orders", edited) == 2
    assert load_contract("orders") == contract
    assert load_contract("orders", 1) == contract

    report, quarantined = validate_dataset("orders@v1")
    assert report.passed and quarantined is None

    bad = pd.DataFrame({"id": [5, 6, 6], "amount": [2.0, -1.0, 3.0]})
    keel.data.add(bad, name="orders")
    report, quarantined = validate_dataset("orders@v2", quarantine=True)
    assert not report.passed and quarantined == "orders-quarantine@v1"
    stored = keel.data.get(quarantined)
    # id 5 is new but valid (key columns carry no range); both 6s break the key.
    assert stored["id"].tolist() == [6, 6]
    assert stored["_keel_failed_checks"].tolist() == ["columns.amount.min,key", "key"]


def test_errors() -> None:
    with pytest.raises(NotFound):
        load_contract("nothing")
    with pytest.raises(InvalidInput, match="unknown check"):
        save_contract("orders", "columns: {a: {type: integer, maxx: 1}}")
    with pytest.raises(InvalidInput):
        save_contract("../etc", Contract("x"))
    with pytest.raises(NotFound):
        load_contract("orders")  # the bad text above was not stored
