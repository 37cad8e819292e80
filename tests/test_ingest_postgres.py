"""Ingest from the platform's database: a real PostgreSQL server (started by `.ci/run` through
`.ci/postgres`, its URL in FENGQIAO_TEST_POSTGRES_URL) gives the same warehouse as the files."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import sqlalchemy as sa

from features.ingest import run_ingest
from pipelines.simulate.export import write_export

URL = os.environ.get("FENGQIAO_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(URL is None, reason="needs a PostgreSQL server: .ci/run starts one (.ci/postgres)")


def test_ingest_from_postgresql_equals_ingest_from_files(small_world, tmp_path):
    raw = tmp_path / "raw"
    write_export(small_world, raw)
    engine = sa.create_engine(URL)
    with engine.begin() as connection:
        for name in small_world.tables:
            pd.read_parquet(raw / f"{name}.parquet").to_sql(name, connection, if_exists="replace", index=False)
    key = b"k" * 32
    as_of = small_world.config.end_ts
    from_files = run_ingest(raw, tmp_path / "files", key, as_of=as_of)
    from_db = run_ingest(URL, tmp_path / "db", key, as_of=as_of)
    for name in small_world.tables:
        assert from_db.tables[name].accepted == from_files.tables[name].accepted == len(small_world.tables[name]), name
        # a database returns rows in no promised order: compare by each table's id
        expected, got = (pd.read_parquet(tmp_path / where / f"{name}.parquet") for where in ("files", "db"))
        key = expected.columns[0]
        expected, got = (t.sort_values(key, kind="stable").reset_index(drop=True) for t in (expected, got))
        pd.testing.assert_frame_equal(got, expected, obj=name)
