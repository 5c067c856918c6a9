"""Pure onion-service formats and crypto (rend-spec-v3): keys and addresses, time periods and
blinding, certificates, descriptor layers, intro points, the HSDir hash ring, the revision counter
and client authorization. No I/O (but reading and writing tor's key files in :mod:`.keys`): this
package imports only the stdlib, ``cryptography``, ``PyNaCl`` and itself (an import-linter contract
checks it).
"""

from onionfleet.hs.blinding import blind_public_key, blind_secret_key, subcredential_for
from onionfleet.hs.client_auth import ClientAuthPrivateKey, ClientAuthPublicKey, DescriptorCookie
from onionfleet.hs.descriptor import (
    BuiltDescriptor,
    DecryptedDescriptor,
    FlowControl,
    ParsedDescriptor,
    PowParams,
    VerifiedDescriptor,
    build_descriptor,
    decode_descriptor,
    parse_descriptor,
    parse_descriptor_unpinned,
)
from onionfleet.hs.errors import DescriptorError, HsError, KeyFileError
from onionfleet.hs.hashring import HsDirRelay, hsdir_params, responsible_hsdirs
from onionfleet.hs.intro_point import IntroPoint, LinkSpecifier, recertify_intro_points
from onionfleet.hs.keys import (
    BlindedPublicKey,
    BlindedSecretKey,
    HsIdExpandedSecretKey,
    HsIdPublicKey,
    OnionAddress,
    generate_master_key,
    load_secret_key_file,
    save_secret_key_file,
)
from onionfleet.hs.revision_counter import RevisionCounterOpe, revision_counter
from onionfleet.hs.timeperiod import (
    DescriptorPeriod,
    DescriptorSlot,
    TimePeriod,
    TimePeriodRules,
    descriptor_periods,
    time_period_at,
    time_period_rules,
)

__all__ = [
    "BlindedPublicKey",
    "BlindedSecretKey",
    "BuiltDescriptor",
    "ClientAuthPrivateKey",
    "ClientAuthPublicKey",
    "DecryptedDescriptor",
    "DescriptorCookie",
    "DescriptorError",
    "DescriptorPeriod",
    "DescriptorSlot",
    "FlowControl",
    "HsDirRelay",
    "HsError",
    "HsIdExpandedSecretKey",
    "HsIdPublicKey",
    "IntroPoint",
    "KeyFileError",
    "LinkSpecifier",
    "OnionAddress",
    "ParsedDescriptor",
    "PowParams",
    "RevisionCounterOpe",
    "TimePeriod",
    "TimePeriodRules",
    "VerifiedDescriptor",
    "blind_public_key",
    "blind_secret_key",
    "build_descriptor",
    "decode_descriptor",
    "descriptor_periods",
    "generate_master_key",
    "hsdir_params",
    "load_secret_key_file",
    "parse_descriptor",
    "parse_descriptor_unpinned",
    "recertify_intro_points",
    "responsible_hsdirs",
    "revision_counter",
    "save_secret_key_file",
    "subcredential_for",
    "time_period_at",
    "time_period_rules",
]
