"""This node's Ed25519 identity: generated on first start, kept in the database, used to sign gossip."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import IntegrityError, transaction
from django.db.models import F

from peers.models import NodeIdentity
from peers.store import now_micros

_RAW = serialization.Encoding.Raw


def peer_id_for(public_key_hex: str) -> str:
    """A peer's id is a digest of its public key, so no node can claim another's id."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:32]


def get_identity() -> NodeIdentity:
    identity = NodeIdentity.objects.filter(pk=1).first()
    if identity is not None:
        return identity
    private_key = Ed25519PrivateKey.generate()
    private_hex = private_key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex()
    public_hex = private_key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw).hex()
    try:
        with transaction.atomic():
            return NodeIdentity.objects.create(
                pk=1, peer_id=peer_id_for(public_hex), public_key=public_hex, private_key=private_hex
            )
    except IntegrityError:  # another process of this node created it first
        return NodeIdentity.objects.get(pk=1)


def sign(identity: NodeIdentity, body: bytes) -> str:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(identity.private_key)).sign(body).hex()


def signature_valid(public_key_hex: str, body: bytes, signature_hex: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), body)
    except (ValueError, InvalidSignature):
        return False
    return True


def next_sequence() -> int:
    """A number that only grows, across processes and restarts (at least the clock in microseconds)."""
    with transaction.atomic():
        floor = now_micros()
        NodeIdentity.objects.filter(pk=1, sequence__lt=floor).update(sequence=floor)
        NodeIdentity.objects.filter(pk=1, sequence__gte=floor).update(sequence=F("sequence") + 1)
        return int(NodeIdentity.objects.values_list("sequence", flat=True).get(pk=1))
