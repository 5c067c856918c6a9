"""Pure onion-service formats and crypto (rend-spec-v3): keys and addresses, time periods and
blinding, certificates, descriptor layers, intro points, the HSDir hash ring, the revision counter
and client authorization. No I/O: this package imports only the stdlib, crypto libraries and itself.
"""
