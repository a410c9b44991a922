"""Twilio's webhook signature: `X-Twilio-Signature`, as `RequestValidator` checks it.

The signed string is the URL (without a fragment) followed by every POST
parameter's name and value, sorted by name; the signature is the Base64 of its
HMAC-SHA1 keyed with the account's auth token. For example, with URL
`https://x.test/cb`, params `{"b": "2", "a": "1"}` the signed string is
`https://x.test/cba1b2`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urldefrag

SIGNATURE_HEADER = "X-Twilio-Signature"


def request_url(url: str) -> str:
    """The URL that is requested and signed: `url` without its `#fragment`.

    The fragment carries connection overrides (`#rc=3&rp=all`); Twilio leaves it
    out of the signature, and HTTP clients never send it.
    """
    return urldefrag(url).url


def compute_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The `X-Twilio-Signature` value of a form POST of `params` to `url`."""
    signed = request_url(url) + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
