"""Smoke-test records: keyed by image ID, written by promotion, read by the no-op check and
publish; a copy of the final image (another ID, the same labels) is never trusted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vdsmlib.docker import labels as L
from vdsmlib.pipeline import trust

FP = "f1" * 32
ORIGINAL = "sha256:" + "a" * 64
COPY = "sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VDSM_CI_CACHE", str(tmp_path))
    return tmp_path


@dataclass
class FakeImage:
    """What trusted_final reads of a docker-py Image: id, labels, tags, Created."""

    id: str
    created: str
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=lambda: {L.KIND: "final", L.FINGERPRINT: FP})

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Created": self.created}


class FakeImages:
    def __init__(self, images: list[FakeImage]):
        self.images = images

    def list(self, filters: dict[str, list[str]]) -> list[FakeImage]:
        wanted = dict(f.split("=", 1) for f in filters["label"])
        return [i for i in self.images if all(i.labels.get(k) == v for k, v in wanted.items())]


class FakeClient:
    def __init__(self, images: list[FakeImage]):
        self.images = FakeImages(images)


def test_a_record_is_found_by_its_image_id_only(cache: Path) -> None:
    assert trust.smoke_passed(ORIGINAL) is None
    trust.record_smoke_passed(ORIGINAL, "run-1", FP, ["repo:pinned", "repo:moving"])
    record = trust.smoke_passed(ORIGINAL)
    assert record is not None and (record.run_id, record.tags) == (
        "run-1",
        ["repo:pinned", "repo:moving"],
    )
    assert trust.smoke_passed(COPY) is None
    assert list((cache / "trust").iterdir()) == [cache / "trust" / f"sha256-{'a' * 64}.json"]


def test_a_malformed_id_or_record_trusts_nothing(cache: Path) -> None:
    assert trust.smoke_passed("../../etc/passwd") is None
    (cache / "trust").mkdir()
    (cache / "trust" / f"sha256-{'b' * 64}.json").write_text("{not json")
    assert trust.smoke_passed(COPY) is None
    # a record copied under another image's name does not vouch for that image
    trust.record_smoke_passed(ORIGINAL, "run-1", FP, ["repo:pinned"])
    source = cache / "trust" / f"sha256-{'a' * 64}.json"
    (cache / "trust" / f"sha256-{'b' * 64}.json").write_text(source.read_text())
    assert trust.smoke_passed(COPY) is None


def test_publish_adds_the_digest_once(cache: Path) -> None:
    trust.record_smoke_passed(ORIGINAL, "run-1", FP, ["repo:pinned"])
    for _ in range(2):
        trust.record_digest(ORIGINAL, "registry/x@sha256:" + "c" * 64)
    trust.record_digest(COPY, "registry/x@sha256:" + "d" * 64)  # no record: nothing written
    record = trust.smoke_passed(ORIGINAL)
    assert record is not None and record.published == ["registry/x@sha256:" + "c" * 64]
    assert trust.smoke_passed(COPY) is None


def test_the_newer_copy_is_ignored_and_named() -> None:
    original = FakeImage(ORIGINAL, "2026-01-01T00:00:00Z", tags=["repo:pinned"])
    copy = FakeImage(COPY, "2026-01-02T00:00:00Z", tags=["user/copy:latest"])
    trust.record_smoke_passed(ORIGINAL, "run-1", FP, ["repo:pinned"])
    found = trust.trusted_final(FakeClient([original, copy]), FP)  # type: ignore[arg-type]
    assert found.image is original and found.record is not None
    assert found.untrusted == [copy]
    assert found.note() == (
        "ignored 1 image(s) labelled as this final image that no smoke test passed "
        f"(copies: docker commit or FROM): {'b' * 12} (user/copy:latest)"
    )


def test_without_a_record_nothing_is_trusted() -> None:
    copy = FakeImage(COPY, "2026-01-02T00:00:00Z", tags=["repo:pinned"])
    found = trust.trusted_final(FakeClient([copy]), FP)  # type: ignore[arg-type]
    assert found.image is None and found.untrusted == [copy]
    assert trust.trusted_final(FakeClient([]), FP).note() == ""  # type: ignore[arg-type]


def test_the_most_recently_promoted_of_two_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    first = FakeImage(ORIGINAL, "2026-01-01T00:00:00Z", tags=["repo:pinned"])
    second = FakeImage(COPY, "2026-01-02T00:00:00Z", tags=["repo:pinned-2"])
    trust.record_smoke_passed(COPY, "run-2", FP, ["repo:pinned-2"])
    trust.record_smoke_passed(ORIGINAL, "run-1", FP, ["repo:pinned"])
    found = trust.trusted_final(FakeClient([second, first]), FP)  # type: ignore[arg-type]
    assert found.image is first and found.untrusted == []
