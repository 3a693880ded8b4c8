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
    layers: list[str] = field(default_factory=list)

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Created": self.created, "RootFS": {"Type": "layers", "Layers": self.layers}}


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
        "ignored 1 image(s) labelled as this final image that no smoke test recorded here "
        f"passed: {'b' * 12} (user/copy:latest): a copy: this user's smoke record for this "
        f"fingerprint is of image {'a' * 12}"
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


LAYERS = [f"sha256:{n}" + "0" * 63 for n in "123"]


def test_a_copy_is_named_by_what_shows_it(cache: Path) -> None:
    """Its layers extend the smoke-tested image's (docker commit, FROM); or this user's record
    names another image for its tag."""
    original = FakeImage(ORIGINAL, "2026-01-01T00:00:00Z", ["repo:pinned"], layers=LAYERS[:2])
    derived = FakeImage(COPY, "2026-01-02T00:00:00Z", ["user/copy:from"], layers=LAYERS)
    retagged = FakeImage("sha256:" + "c" * 64, "2026-01-03T00:00:00Z", ["repo:pinned"])
    trust.record_smoke_passed("sha256:" + "e" * 64, "run-0", FP, ["repo:old"])  # image gone
    trust.record_smoke_passed(ORIGINAL, "run-1", FP, ["repo:pinned", "repo:moving"])
    client = FakeClient([original, derived, retagged])
    found = trust.trusted_final(client, FP)  # type: ignore[arg-type]
    assert found.image is original and found.untrusted == [retagged, derived]  # newest first
    assert found.note() == (
        "ignored 2 image(s) labelled as this final image that no smoke test recorded here "
        f"passed: {'c' * 12} (repo:pinned): a copy: this user's smoke record for repo:pinned "
        f"is of image {'a' * 12}; {'b' * 12} (user/copy:from): a copy of {'a' * 12} (its "
        "layers and more: docker commit or FROM)"
    )
    # a commit that changed nothing: the smoke-tested layers under another configuration
    unchanged = FakeImage("sha256:" + "f" * 64, "2026-01-04T00:00:00Z", layers=LAYERS[:2])
    assert trust.why_untrusted(unchanged, [original, unchanged], found.records) == (
        f"a copy of {'a' * 12} (the same layers: docker commit)"
    )


def test_an_image_another_users_build_smoke_tested_is_not_called_a_copy(cache: Path) -> None:
    """Records are per user: root's build meets the image a docker-group user's build promoted
    (and a copy made from it). Nothing here recorded either: the one is said to have no record
    in this user's cache, the one built on it is still a copy of it."""
    theirs = FakeImage(ORIGINAL, "2026-01-01T00:00:00Z", ["repo:pinned"], layers=LAYERS[:2])
    derived = FakeImage(COPY, "2026-01-02T00:00:00Z", ["user/copy:commit"], layers=LAYERS)
    # the same layers, another build's configuration: neither is known to be the copy
    twin = FakeImage("sha256:" + "c" * 64, "2026-01-03T00:00:00Z", layers=LAYERS[:2])
    # a record of another fingerprint does not speak for this one
    trust.record_smoke_passed("sha256:" + "d" * 64, "run-0", "e0" * 32, ["repo:older"])
    client = FakeClient([theirs, derived, twin])
    found = trust.trusted_final(client, FP)  # type: ignore[arg-type]
    assert found.image is None and found.records == []
    for image in (theirs, twin):
        assert trust.why_untrusted(image, found.untrusted, found.records) == (
            f"no smoke record in this user's cache ({cache / 'trust'}): smoke-tested by "
            "another user's build here, or a copy"
        )
    # built on either (their layers are the same)
    assert trust.why_untrusted(derived, found.untrusted, found.records) in {
        f"a copy of {x * 12} (its layers and more: docker commit or FROM)" for x in "ac"
    }
    assert "copy: this user's smoke record" not in found.note()


def test_records_of_a_fingerprint_skip_malformed_and_misnamed_files(cache: Path) -> None:
    trust.record_smoke_passed(ORIGINAL, "run-1", FP, ["repo:pinned"])
    folder = cache / "trust"
    (folder / "junk.json").write_text("{not json")
    (folder / f"sha256-{'b' * 64}.json").write_text(
        (folder / f"sha256-{'a' * 64}.json").read_text()  # a record under another image's name
    )
    assert [r.image_id for r in trust.fingerprint_records(FP)] == [ORIGINAL]
    assert trust.fingerprint_records("e0" * 32) == []
