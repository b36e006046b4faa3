"""Our fast UUID constructors make exactly what the standard library makes."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from crowdledger.domain.ids import new_uuid4
from crowdledger.domain.streams import NAMESPACE, stream_hex, stream_uuid


@given(st.text(min_size=1, max_size=80))
def test_stream_ids_are_uuid5(name: str) -> None:
    expected = uuid.uuid5(NAMESPACE, name)
    made = stream_uuid(name)
    assert made == expected
    assert hash(made) == hash(expected)
    assert str(made) == str(expected)
    assert stream_hex(name) == expected.hex


def test_new_uuid4_is_a_random_version_4_uuid() -> None:
    made = [new_uuid4() for _ in range(1000)]
    assert len(set(made)) == 1000
    for value in made:
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        assert uuid.UUID(str(value)) == value
        assert isinstance(value, uuid.UUID)
