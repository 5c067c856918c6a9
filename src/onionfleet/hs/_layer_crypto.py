"""Descriptor layer encryption (rend-spec-v3 [HS-DESC-ENCRYPTION-KEYS]; tor ``hs_descriptor.c``
``build_secret_key_iv_mac``, ``build_mac``, ``encrypt_descriptor_data``, ``decrypt_desc_layer``).

``keys = SHAKE-256(SECRET_DATA | N_hs_subcred | INT_8(revision_counter) | salt | STRING_CONSTANT)``
read as ``SECRET_KEY (32) | SECRET_IV (16) | MAC_KEY (32)``; ``SECRET_DATA`` is the blinded key,
plus the descriptor cookie for the inner layer under client auth. The blob is
``salt (16) | AES-256-CTR(plaintext) | MAC``, ``MAC = SHA3-256(INT_8(len(mac_key)) | mac_key |
INT_8(len(salt)) | salt | ciphertext)``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from onionfleet.hs.errors import DescriptorDecryptionError, DescriptorError
from onionfleet.hs.params import (
    HS_DESC_ENCRYPTED_IV_LEN,
    HS_DESC_ENCRYPTED_KEY_LEN,
    HS_DESC_ENCRYPTED_MAC_LEN,
    HS_DESC_ENCRYPTED_SALT_LEN,
    HS_DESC_SUPERENC_PLAINTEXT_PAD_MULTIPLE,
)


def compute_padded_plaintext_length(plaintext_len: int) -> int:
    """tor ``compute_padded_plaintext_length``: round up to a multiple of 10,000 bytes."""
    m = HS_DESC_SUPERENC_PLAINTEXT_PAD_MULTIPLE
    return -(-plaintext_len // m) * m


def _keys(
    secret_data: bytes, subcredential: bytes, revision_counter: int, salt: bytes, constant: bytes
) -> tuple[bytes, bytes, bytes]:
    material = hashlib.shake_256(
        secret_data + subcredential + struct.pack(">Q", revision_counter) + salt + constant
    ).digest(HS_DESC_ENCRYPTED_KEY_LEN + HS_DESC_ENCRYPTED_IV_LEN + 32)
    key = material[:HS_DESC_ENCRYPTED_KEY_LEN]
    iv = material[HS_DESC_ENCRYPTED_KEY_LEN : HS_DESC_ENCRYPTED_KEY_LEN + HS_DESC_ENCRYPTED_IV_LEN]
    mac_key = material[HS_DESC_ENCRYPTED_KEY_LEN + HS_DESC_ENCRYPTED_IV_LEN :]
    return key, iv, mac_key


def _mac(mac_key: bytes, salt: bytes, ciphertext: bytes) -> bytes:
    return hashlib.sha3_256(
        struct.pack(">Q", len(mac_key)) + mac_key + struct.pack(">Q", len(salt)) + salt + ciphertext
    ).digest()


def aes256_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def encrypt_layer(
    plaintext: bytes,
    *,
    secret_data: bytes,
    subcredential: bytes,
    revision_counter: int,
    constant: bytes,
    salt: bytes,
    pad: bool,
) -> bytes:
    """``salt | ciphertext | MAC``; ``pad`` NUL-pads to a multiple of 10,000 (superencrypted
    layer)."""
    if len(salt) != HS_DESC_ENCRYPTED_SALT_LEN:
        raise DescriptorError("layer salt must be 16 bytes")
    if pad:
        plaintext = plaintext.ljust(compute_padded_plaintext_length(len(plaintext)), b"\x00")
    key, iv, mac_key = _keys(secret_data, subcredential, revision_counter, salt, constant)
    ciphertext = aes256_ctr(key, iv, plaintext)
    return salt + ciphertext + _mac(mac_key, salt, ciphertext)


def decrypt_layer(
    blob: bytes,
    *,
    secret_data: bytes,
    subcredential: bytes,
    revision_counter: int,
    constant: bytes,
    what: str,
) -> bytes:
    """Check the MAC, decrypt, and cut at the first NUL (tor treats the plaintext as a C string)."""
    if len(blob) < HS_DESC_ENCRYPTED_SALT_LEN + HS_DESC_ENCRYPTED_MAC_LEN + 1:
        raise DescriptorDecryptionError(f"{what}: encrypted blob is too short ({len(blob)} bytes)")
    salt = blob[:HS_DESC_ENCRYPTED_SALT_LEN]
    ciphertext = blob[HS_DESC_ENCRYPTED_SALT_LEN:-HS_DESC_ENCRYPTED_MAC_LEN]
    mac = blob[-HS_DESC_ENCRYPTED_MAC_LEN:]
    key, iv, mac_key = _keys(secret_data, subcredential, revision_counter, salt, constant)
    if not hmac.compare_digest(mac, _mac(mac_key, salt, ciphertext)):
        raise DescriptorDecryptionError(
            f"{what}: MAC mismatch; wrong onion address or time period, or (inner layer) the "
            "descriptor needs a client-authorization key"
        )
    plaintext = aes256_ctr(key, iv, ciphertext)
    nul = plaintext.find(b"\x00")
    return plaintext if nul < 0 else plaintext[:nul]
