"""The decision on a checkpoint pulled from the registry cache: accepted only when the record
pushed beside it names its image ID and one of its digests (pure: no Docker)."""

from __future__ import annotations

from vdsmlib.checkpoints.cache import judge_pull, record_tag

REF = "registry.example/ci/checkpoints:sim-tcg-final-0123456789ab"
RECORD_REF = f"registry.example/ci/checkpoints:{record_tag('sim-tcg-final-0123456789ab')}"
PUSHED = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
IMAGE = "sha256:" + "c" * 64
RECORD = {
    "reference": REF,
    "digest": PUSHED,
    "image_id": IMAGE,
    "stage": "final",
    "fingerprint": "0123456789ab" * 4,
    "run_id": "20261203-170000-abcd",
}


def test_record_tag_sits_beside_the_checkpoint_tag() -> None:
    assert RECORD_REF.endswith(":sim-tcg-final-0123456789ab.record")


def test_the_pushed_checkpoint_is_accepted() -> None:
    assert judge_pull(REF, IMAGE, [PUSHED], RECORD, RECORD_REF) == ""
    # re-pushed (another manifest of the same image): the digest recorded is one of its own
    assert judge_pull(REF, IMAGE, [OTHER, PUSHED], RECORD, RECORD_REF) == ""


def test_no_record_means_something_else_pushed_it() -> None:
    why = judge_pull(REF, IMAGE, [PUSHED], None, RECORD_REF)
    assert why.startswith(f"{REF} refused: no record {RECORD_REF}")
    assert "something else" in why and "\n" not in why


def test_another_digest_means_the_tag_was_overwritten() -> None:
    why = judge_pull(REF, "sha256:" + "d" * 64, [OTHER], RECORD, RECORD_REF)
    assert why.startswith(f"{REF} refused: its digest ({OTHER}) is not {PUSHED}")
    assert "the tag was overwritten" in why and "\n" not in why


def test_the_digest_alone_is_not_enough_the_image_id_must_match() -> None:
    why = judge_pull(REF, "sha256:" + "d" * 64, [PUSHED], RECORD, RECORD_REF)
    assert "the tag was overwritten" in why


def test_no_digest_in_the_repository_is_refused() -> None:
    why = judge_pull(REF, IMAGE, [], RECORD, RECORD_REF)
    assert "its digest (none)" in why


def test_a_record_without_a_digest_accepts_nothing() -> None:
    record = {k: v for k, v in RECORD.items() if k != "digest"}
    assert "is not none" in judge_pull(REF, IMAGE, [PUSHED], record, RECORD_REF)
    assert judge_pull(REF, IMAGE, [""], record, RECORD_REF) != ""
