"""Session fixtures that start the real services the tests talk to.

The broker (Tansu) and the S3 store (SeaweedFS) come from the project's own
wheels and are started here on ports shifted away from the demo's, so the tests
can run beside a running demo. PostgreSQL is the machine's server at
127.0.0.1:5432 (database ``test``); each test run gets its own schema-free
database name prefix via unique table contents, and a skip names what is missing
when it cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cctv.config import KafkaSettings, S3Settings, Settings, StackPorts
from cctv.stack import LocalStack

TEST_PORT_OFFSET = int(os.environ.get("CCTV_TEST_PORT_OFFSET", "100"))
POSTGRES_URL = os.environ.get("CCTV_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PETS_DIR = Path(
    os.environ.get("CCTV_PETS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09-s2l1")
)

ACCESS_KEY = "cctv-test"
SECRET_KEY = "cctv-test-secret"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The real Kafka-protocol broker and S3 store, started once per test session."""
    data_dir = tmp_path_factory.mktemp("stack")
    local = LocalStack(
        data_dir=data_dir,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        ports=StackPorts().shifted(TEST_PORT_OFFSET),
    )
    local.up()
    try:
        yield local
    finally:
        local.down()


@pytest.fixture
def unique() -> str:
    """A short unique suffix so every test owns its topics, groups and buckets."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def settings(stack: LocalStack, unique: str, tmp_path: Path) -> Settings:
    """Settings pointing at the session stack, with topics, groups and bucket private to this test."""
    base = Settings(
        data_dir=tmp_path,
        kafka=KafkaSettings(frames_partitions=2, session_timeout_ms=6000),
        s3=S3Settings(retention_days=1),
    )
    return stack.settings_for(base, f"t{unique}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The machine's PostgreSQL; skipped with the reason when it is not reachable."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture(scope="session")
def pets_dir() -> Path:
    """The real PETS09 S2L1 footage with ground truth; skipped with the reason when absent."""
    if not (PETS_DIR / "vtest.avi").exists() or not (PETS_DIR / "gt.txt").exists():
        pytest.skip(f"PETS09 data not found at {PETS_DIR} (set CCTV_PETS_DIR)")
    return PETS_DIR
