import pytest

from shared.secrets import decrypt_secret, encrypt_secret, hash_secret, secret_matches


def test_hash_is_keyed_and_checked_in_constant_time():
    digest = hash_secret("k1", "token")
    assert secret_matches("k1", "token", digest)
    assert not secret_matches("k2", "token", digest)
    assert not secret_matches("k1", "other", digest)


def test_encryption_round_trips_and_needs_the_same_key():
    ciphertext = encrypt_secret("k1", "token")
    assert "token" not in ciphertext
    assert decrypt_secret("k1", ciphertext) == "token"
    with pytest.raises(ValueError):
        decrypt_secret("k2", ciphertext)
