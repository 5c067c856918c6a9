"""onionfleet: multi-node load balancing and failover for Tor v3 onion services.

Several nodes hold the same master onion key; one elected publisher merges the intro points of
every healthy node into one v3 descriptor and uploads it to the HSDirs it computes itself.
See docs/architecture.md.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
