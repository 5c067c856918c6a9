"""Parameters defined by the v3 onion-service spec and little-t-tor, with their sources.

Values here are protocol facts, not operator settings. Values the consensus publishes (e.g.
``HSV3MaxDescriptorSize``) should be read from it; these are the spec defaults.
"""

from __future__ import annotations

from typing import Final

# --- descriptor (rend-spec-v3 [DESC-OUTER], tor src/feature/hs/hs_descriptor.h) ----------------

#: The only descriptor version we build or read (``hs-descriptor 3``).
HS_DESC_VERSION: Final = 3
#: Max encoded size; HSDirs reject ``strlen >= max`` (hs_cache.c
#: ``hs_cache_get_max_descriptor_size``,
#: consensus param ``HSV3MaxDescriptorSize``, default 50000).
HS_DESC_MAX_LEN: Final = 50_000
#: Max intro points a client accepts (hs_config.h ``HS_CONFIG_V3_MAX_INTRO_POINTS``).
HS_MAX_INTRO_POINTS: Final = 20
#: ``descriptor-lifetime`` tor writes, minutes (hs_descriptor.h ``HS_DESC_DEFAULT_LIFETIME``).
HS_DESC_DEFAULT_LIFETIME_MIN: Final = 180
#: Largest lifetime a decoder accepts, minutes (hs_descriptor.h ``HS_DESC_MAX_LIFETIME``).
HS_DESC_MAX_LIFETIME_MIN: Final = 720
#: Lifetime of the certs tor puts in a descriptor, hours (hs_descriptor.h
#: ``HS_DESC_CERT_LIFETIME``).
HS_DESC_CERT_LIFETIME_H: Final = 54
#: The superencrypted plaintext is padded with NULs to a multiple of this
#: (hs_descriptor.h ``HS_DESC_SUPERENC_PLAINTEXT_PAD_MULTIPLE``, rend-spec-v3
#: [HS-DESC-SECOND-LAYER]).
HS_DESC_SUPERENC_PLAINTEXT_PAD_MULTIPLE: Final = 10_000
#: auth-client lines come in multiples of this (hs_descriptor.h ``HS_DESC_AUTH_CLIENT_MULTIPLE``).
HS_DESC_AUTH_CLIENT_MULTIPLE: Final = 16
#: Prefix of the string the descriptor signature covers (rend-spec-v3 [DESC-OUTER] "signature").
HS_DESC_SIG_PREFIX: Final = b"Tor onion service descriptor sig v3"
#: Layer KDF constants (rend-spec-v3 [HS-DESC-FIRST-LAYER], [HS-DESC-SECOND-LAYER]).
HS_DESC_SUPERENC_CONSTANT: Final = b"hsdir-superencrypted-data"
HS_DESC_ENC_CONSTANT: Final = b"hsdir-encrypted-data"
#: Sizes in the encrypted blob ``SALT | ENCRYPTED | MAC`` (rend-spec-v3 [HS-DESC-ENCRYPTION-KEYS]).
HS_DESC_ENCRYPTED_SALT_LEN: Final = 16
HS_DESC_ENCRYPTED_MAC_LEN: Final = 32
HS_DESC_ENCRYPTED_KEY_LEN: Final = 32  # AES-256
HS_DESC_ENCRYPTED_IV_LEN: Final = 16
#: Client auth (rend-spec-v3 [CLIENT-AUTH]; hs_descriptor.h): client-id 8 bytes, iv 16,
#: descriptor cookie 16 (``HS_DESC_DESCRIPTOR_COOKIE_LEN``),
#: cookie key 32 (``HS_DESC_COOKIE_KEY_LEN``).
HS_DESC_CLIENT_ID_LEN: Final = 8
HS_DESC_COOKIE_LEN: Final = 16
HS_DESC_COOKIE_KEY_LEN: Final = 32
#: ``create2-formats`` value: ntor (rend-spec-v3 [HS-DESC-ENCRYPTION-KEYS] "create2-formats").
HS_DESC_CREATE2_FORMAT_NTOR: Final = 2

# --- keys and addresses (rend-spec-v3 [ONIONADDRESS], tor hs_common.c) ----------------------------

#: ``.onion`` version byte (rend-spec-v3 [ONIONADDRESS] ``VERSION``).
HS_ONION_VERSION: Final = 3
#: Address checksum prefix (``CHECKSUM = H(".onion checksum" | PUBKEY | VERSION)[:2]``).
HS_ONION_CHECKSUM_PREFIX: Final = b".onion checksum"
#: Blinding (rend-spec-v3 [KEYBLIND], tor hs_common.c ``build_blinded_key_param``).
HS_KEYBLIND_STRING: Final = b"Derive temporary signing key\x00"
HS_KEYBLIND_NONCE_PREFIX: Final = b"key-blind"
#: ed25519 basepoint string ``B`` as rend-spec-v3 [KEYBLIND] writes it (tor
#: ``str_ed25519_basepoint``).
HS_ED25519_BASEPOINT: Final = (
    b"(15112221349535400772501151409588531511454012693041857206046113283949847762202, "
    b"46316835694926478169428394003475163141307993866256225615783033603165251855960)"
)
#: Blinded secret key prefix derivation (tor ``ed25519_donna_blind_secret_key``).
HS_BLIND_PREFIX_STRING: Final = b"Derive temporary signing key hash input"
#: Credential and subcredential (rend-spec-v3 [SUBCRED]).
HS_CREDENTIAL_PREFIX: Final = b"credential"
HS_SUBCREDENTIAL_PREFIX: Final = b"subcredential"
#: tor key file headers, 32 bytes NUL-padded (tor ``crypto_write_tagged_contents_to_file``).
HS_SECRET_KEY_FILE_TAG: Final = b"== ed25519v1-secret: type0 =="
HS_PUBLIC_KEY_FILE_TAG: Final = b"== ed25519v1-public: type0 =="
HS_KEY_FILE_HEADER_LEN: Final = 32

# --- certificates (cert-spec [ED-CERT], tor src/trunnel/ed25519_cert.trunnel, torcert.h) --------

TOR_CERT_VERSION: Final = 1
#: "X_V_Y": key X verifies key Y (cert-spec [CERT-TYPES]).
CERT_TYPE_HS_BLINDED_ID_V_SIGNING: Final = 0x08
CERT_TYPE_HS_IP_V_SIGNING: Final = 0x09
CERT_TYPE_HS_IP_CC_SIGNING: Final = 0x0B
#: Certified key type 01 = ed25519 key (cert-spec [ED-CERT] CERT_KEY_TYPE).
CERT_KEY_TYPE_ED25519: Final = 0x01
#: Extension 04: signed-with-ed25519-key (cert-spec [ED-CERT] "signed-with-ed25519-key").
CERT_EXT_SIGNED_WITH_ED25519_KEY: Final = 0x04
#: Extension flag: affects validation; unknown extensions with it make the cert invalid.
CERT_EXT_FLAG_AFFECTS_VALIDATION: Final = 0x01

# --- time periods, hash ring, revision counter ---
# (rend-spec-v3 [TIME-PERIODS], [HASHRING]; tor hs_common.h, shared_random_client.h, crypto_ope.h)

#: TP length default and clamps, minutes: consensus param ``hsdir_interval`` (tor hs_common.h
#: ``HS_TIME_PERIOD_LENGTH_DEFAULT``/``_MIN``/``_MAX``; ``get_time_period_length`` clamps to them).
HS_TIME_PERIOD_LENGTH_DEFAULT_MIN: Final = 1440
HS_TIME_PERIOD_LENGTH_MIN_MIN: Final = 30
HS_TIME_PERIOD_LENGTH_MAX_MIN: Final = 14_400
#: Consensus parameter naming the TP length (tor ``get_time_period_length``).
HS_TIME_PERIOD_LENGTH_PARAM: Final = "hsdir_interval"
#: Rounds per SRV phase and phases per SRV run (shared_random_client.h ``SHARED_RANDOM_N_ROUNDS``,
#: ``SHARED_RANDOM_N_PHASES``): phase = 12 voting intervals (the TP rotation offset), run = 24.
SR_N_ROUNDS: Final = 12
SR_N_PHASES: Final = 2
#: Length of a shared random value (``sr_srv_t.value``, DIGEST256_LEN).
HS_SRV_LEN: Final = 32
#: Disaster SRV prefix (hs_common.h ``HS_SRV_DISASTER_PREFIX``, rend-spec-v3 [HASHRING]).
HS_SRV_DISASTER_PREFIX: Final = b"shared-random-disaster"
#: Hash ring index prefixes (hs_common.h ``HS_INDEX_PREFIX``, ``HSDIR_INDEX_PREFIX``).
HS_INDEX_PREFIX: Final = b"store-at-idx"
HSDIR_INDEX_PREFIX: Final = b"node-idx"
#: Consensus params and defaults for the ring (hs_common.h ``HS_DEFAULT_HSDIR_*``); tor clamps
#: replicas to 1..16 and spread to 1..128 (hs_common.c ``hs_get_hsdir_*``).
HSDIR_N_REPLICAS_PARAM: Final = "hsdir_n_replicas"
HSDIR_SPREAD_STORE_PARAM: Final = "hsdir_spread_store"
HSDIR_SPREAD_FETCH_PARAM: Final = "hsdir_spread_fetch"
HSDIR_N_REPLICAS_DEFAULT: Final = 2
HSDIR_SPREAD_STORE_DEFAULT: Final = 4
HSDIR_SPREAD_FETCH_DEFAULT: Final = 3
HSDIR_N_REPLICAS_MIN: Final = 1
HSDIR_N_REPLICAS_MAX: Final = 16
HSDIR_SPREAD_MIN: Final = 1
HSDIR_SPREAD_MAX: Final = 128
#: OPE key prefix *with* its NUL: tor hashes ``sizeof("rev-counter-generation")`` bytes
#: (hs_service.c ``generate_ope_cipher_for_desc``).
HS_REV_COUNTER_KEY_PREFIX: Final = b"rev-counter-generation\x00"
#: Largest OPE input (crypto_ope.h ``OPE_INPUT_MAX`` = 2^18 s ≈ 72.8 h); tor clamps to it.
OPE_INPUT_MAX: Final = 1 << 18
