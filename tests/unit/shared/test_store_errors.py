"""Store errors become domain errors that say what happened."""

import pytest
from pymongo.errors import AutoReconnect, ClientBulkWriteException

from shared.errors import ConflictError, UnavailableError
from shared.storage.mongo import translate_errors


async def _raise(exc: Exception):
    raise exc


@pytest.mark.parametrize(
    ("details", "expected", "message"),
    [
        ({"error": AutoReconnect("connection is already closed")}, UnavailableError, "did not answer"),
        ({"writeErrors": [{"code": 11000, "errmsg": "dup"}]}, ConflictError, "same unique value"),
        ({"writeErrors": [{"code": 121, "errmsg": "invalid"}]}, UnavailableError, "refused a write"),
    ],
)
async def test_a_client_bulk_write_failure_is_named_by_its_cause(details, expected, message):
    failure = ClientBulkWriteException(details, verbose=False)
    with pytest.raises(expected) as caught:
        await translate_errors(lambda: _raise(failure))
    assert message in caught.value.message
