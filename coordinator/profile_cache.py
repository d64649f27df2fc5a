"""Decoded profiles, kept once per stored version and once per distinct raw content.

Stored versions never change, so a version's decoded profile is valid until the
version is pruned; hosts with identical leaves share one decoded profile. This is the
one place a later cache (bounded, invalidated on removal) takes over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cpucompat.agent.decode import decode
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import RawCapture

from .storage.blobs import unpack_capture


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


class ProfileCache:
    def __init__(self) -> None:
        self._by_digest: dict[str, Profile] = {}
        self._by_version: dict[int, Profile] = {}

    def version(self, version: int) -> Profile | None:
        return self._by_version.get(version)

    def content(self, key: str) -> Profile | None:
        return self._by_digest.get(key)

    def decode(
        self,
        blob: bytes,
        *,
        damaged: Callable[[str], Exception],
        capture: RawCapture | None = None,
        what: str = "a stored profile",
    ) -> Profile:
        """Decode stored raw leaves once per distinct content; ``damaged`` builds the error
        for bytes that cannot be decoded."""
        key = digest(blob)
        profile = self._by_digest.get(key)
        if profile is None:
            if capture is None:
                try:
                    profile = decode(unpack_capture(blob))
                except Exception as exc:  # zlib, JSON or leaves: the stored bytes are damaged
                    raise damaged(f"{what} cannot be decoded ({exc})") from None
            else:
                profile = decode(capture)
            self._by_digest[key] = profile
        return profile

    def remember(self, version: int, profile: Profile) -> Profile:
        self._by_version[version] = profile
        return profile

    def remember_content(self, key: str, profile: Profile) -> None:
        self._by_digest.setdefault(key, profile)

    def forget(self, version: int) -> None:
        self._by_version.pop(version, None)
