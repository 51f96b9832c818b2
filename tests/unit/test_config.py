"""Operator settings for scene package checks: overrides reach the limits, bad ones stop the start."""

from __future__ import annotations

import pytest

from server.config import from_env


def test_ingest_limit_overrides_reach_ingest() -> None:
    limits = from_env({"AMALIY_INGEST_LIMITS_JSON": '{"max_vertices": 2000000, "max_image_pixels": 67108864}', "AMALIY_MANIFEST_MAX_DEPTH": "12"}).ingest_limits()
    assert limits.max_vertices == 2_000_000 and limits.max_image_pixels == 67_108_864 and limits.manifest.max_depth == 12


@pytest.mark.parametrize("raw", ['{"max_vertex": 5}', '{"max_vertices": -1}', '{"max_vertices": true}', "[1]", "{nope"])
def test_a_bad_ingest_limit_override_stops_the_start_with_a_message(raw: str) -> None:
    with pytest.raises(SystemExit, match="AMALIY_INGEST_LIMITS_JSON must be JSON"):
        from_env({"AMALIY_INGEST_LIMITS_JSON": raw}).ingest_limits()


def test_ingest_pool_settings_must_be_positive() -> None:
    assert from_env({"AMALIY_INGEST_WORKERS": "3"}).ingest_pool().workers == 3
    with pytest.raises(SystemExit, match="AMALIY_INGEST_WORKERS must be positive"):
        from_env({"AMALIY_INGEST_WORKERS": "0"}).ingest_pool()
