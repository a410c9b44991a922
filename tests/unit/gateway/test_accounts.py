import base64

import pytest

from services.gateway.accounts import parse_basic_auth
from shared.errors import AuthenticationError


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_credentials_are_split_at_the_first_colon():
    assert parse_basic_auth(_basic("AC1:to:ken")) == ("AC1", "to:ken")


@pytest.mark.parametrize("header", [None, "", "Bearer x", "Basic !!!", _basic("no-colon")])
def test_malformed_credentials_are_refused(header):
    with pytest.raises(AuthenticationError):
        parse_basic_auth(header)
