"""Identity: our pure peer IDs and signatures are libp2p's, byte for byte."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import IdentityError
from protocol.identity import (
    ED25519_PEER_ID_PREFIX,
    NaclSigner,
    Signer,
    b58decode,
    b58encode,
    peer_id_from_str,
    peer_id_to_str,
    public_key_from_peer_id,
    short_id,
    verify,
)


@pytest.mark.parametrize("seed", [bytes(32), b"\x01" * 32, bytes(range(32))])
def test_peer_id_equals_libp2p(seed: bytes) -> None:
    # libp2p may be imported in tests, never in protocol/
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    pair = create_new_key_pair(seed)
    expected = ID.from_pubkey(pair.public_key)
    signer = NaclSigner(seed)
    assert signer.peer_id == expected.to_bytes()
    assert peer_id_to_str(signer.peer_id) == expected.to_base58()
    assert peer_id_from_str(expected.to_base58()) == signer.peer_id
    # a libp2p key pair's signature verifies through our pure path and vice versa
    assert verify(signer.peer_id, b"data", pair.private_key.sign(b"data"))
    assert pair.public_key.verify(b"data", signer.sign(b"data"))


def test_peer_id_layout_inlines_public_key() -> None:
    signer = NaclSigner(b"\x07" * 32)
    assert signer.peer_id.startswith(ED25519_PEER_ID_PREFIX)
    assert public_key_from_peer_id(signer.peer_id) == signer.public_key
    assert isinstance(signer, Signer)
    assert peer_id_to_str(signer.peer_id).startswith("12D3KooW")


def test_verify_rejects_wrong_key_data_and_garbage() -> None:
    a, b = NaclSigner(b"\x01" * 32), NaclSigner(b"\x02" * 32)
    sig = a.sign(b"hello")
    assert verify(a.peer_id, b"hello", sig)
    assert not verify(b.peer_id, b"hello", sig)
    assert not verify(a.peer_id, b"hellO", sig)
    assert not verify(a.peer_id, b"hello", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not verify(b"\x00" * 38, b"hello", sig)
    assert not verify(a.peer_id, b"hello", b"short")
    assert not verify("not bytes", b"hello", sig)  # type: ignore[arg-type]


@given(st.binary(max_size=64))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@given(st.binary(max_size=40))
def test_base58_matches_reference(data: bytes) -> None:
    import base58  # libp2p's dependency, used here only as the reference

    assert b58encode(data) == base58.b58encode(data).decode()


@pytest.mark.parametrize("text", ["", "0OIl", "12D3KooW", "Qm" + "1" * 44, "x" * 500])
def test_peer_id_from_str_rejects_non_ed25519(text: str) -> None:
    with pytest.raises(IdentityError):
        peer_id_from_str(text)


def test_short_id_is_last_six_chars() -> None:
    signer = NaclSigner(b"\x03" * 32)
    text = peer_id_to_str(signer.peer_id)
    assert short_id(signer.peer_id) == text[-6:] == short_id(text)


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, "x" * 32])
def test_signer_rejects_bad_seed(seed: object) -> None:
    with pytest.raises(IdentityError):
        NaclSigner(seed)  # type: ignore[arg-type]
