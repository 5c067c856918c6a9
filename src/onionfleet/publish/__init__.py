"""The publisher: choose intro points across nodes, build the first and second merged descriptors,
upload them to the HSDirs we compute, and verify that they landed.

Planning code here (selection, republish triggers) is pure; the uploader is an adapter.
"""

from onionfleet.publish.selection import IntroPointSelection, NodeIntroPoints, select_intro_points

__all__ = ["IntroPointSelection", "NodeIntroPoints", "select_intro_points"]
