"""Password rules and argon2id hashing.

A password must be 12-1024 characters, must not contain the username, must have at least five
different characters, and must not be one of the most common passwords (bundled list), nor one
of them padded with digits or symbols (``Password123!``) or repeated (``monkeymonkey``).

Hashes are argon2id with explicit parameters (``HashParams``). The parameters are part of each
stored hash, so when they change, the next successful login re-hashes the password with the new
ones (``verify`` returns the new hash to store).
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 copes with more; the cap keeps a login request cheap to reject
MIN_DISTINCT = 5
_PADDING = string.digits + string.punctuation + string.whitespace


@dataclass(frozen=True, slots=True)
class HashParams:
    """argon2id cost parameters. The default is RFC 9106's second recommended option (64 MiB,
    3 passes, 4 lanes: ~70 ms on one core of a small server); tests may pass cheaper ones."""

    time_cost: int = 3
    memory_cost_kib: int = 65_536
    parallelism: int = 4
    hash_len: int = 32
    salt_len: int = 16


@cache
def _hasher(params: HashParams) -> PasswordHasher:
    from argon2 import PasswordHasher, Type

    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        salt_len=params.salt_len,
        type=Type.ID,
    )


def _normal(password: str) -> str:
    # The same passphrase typed on another system may arrive decomposed (macOS input gives NFD);
    # NFC before hashing makes both spellings one password, as NIST SP 800-63B advises.
    return unicodedata.normalize("NFC", password)


def hash_password(password: str, params: HashParams) -> str:
    return _hasher(params).hash(_normal(password))


def verify(stored: str, password: str, params: HashParams) -> tuple[bool, str | None]:
    """``(matches, new_hash)``: ``new_hash`` is set when the password matched but was hashed
    with other parameters than ``params`` and should be stored again."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher(params)
    password = _normal(password)
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if hasher.check_needs_rehash(stored):
        return True, hasher.hash(password)
    return True, None


@cache
def _dummy_hash(params: HashParams) -> str:
    return _hasher(params).hash("keel-dummy-password-for-unknown-users")


def verify_dummy(password: str, params: HashParams) -> None:
    """Spend the time of a real verification, for a login with an unknown username, so the
    answer's timing does not tell whether the account exists."""
    verify(_dummy_hash(params), password, params)


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("keel.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line and not line.startswith("#")
    )


def _repeated_unit(text: str) -> str | None:
    """The shortest unit that ``text`` repeats two or more times, if any."""
    n = len(text)
    for size in range(1, n // 2 + 1):
        if n % size == 0 and text[:size] * (n // size) == text:
            return text[:size]
    return None


def check_strength(password: object, *, username: str) -> str:
    """The password if it follows the rules; ``InvalidInput(field="password")`` saying which
    rule it breaks otherwise."""
    if not isinstance(password, str):
        raise InvalidInput(f"must be a string, got {type(password).__name__}", field="password")
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"must be at least {MIN_LENGTH} characters", field="password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"must be at most {MAX_LENGTH} characters", field="password")
    if "\x00" in password:
        raise InvalidInput("must not contain NUL", field="password")
    folded = unicodedata.normalize("NFC", password).casefold()
    if username and username.casefold() in folded:
        raise InvalidInput("must not contain the username", field="password")
    if len(set(folded)) < MIN_DISTINCT:
        raise InvalidInput(
            f"must contain at least {MIN_DISTINCT} different characters", field="password"
        )
    core = folded.strip(_PADDING)
    if not core:
        raise InvalidInput("must not be only digits and symbols", field="password")
    candidates = {folded, core}
    for text in (folded, core):
        unit = _repeated_unit(text)
        if unit is not None:
            candidates.update((unit, unit.strip(_PADDING)))
    if candidates & common_passwords():
        raise InvalidInput(
            "is too common (it or its core is on the list of most-used passwords); "
            "choose a longer passphrase",
            field="password",
        )
    return password
