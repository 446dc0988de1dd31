"""Peer sandboxes measured beside skillharbor by ``bench/bench_peers.py``.

One module per peer (``llm_sandbox_peer``, ``epicbox_peer``), the plain
Docker floors (``docker_floor``) and skillharbor itself (``skillharbor_side``),
all behind the ``Variant`` interface of ``variants.py`` so the benchmark can
interleave them round by round. ``workloads.py`` holds what every variant
runs; ``hardening.py`` holds the isolation flags applied and the probe that
reads, from inside each peer's container, which of them took effect.
"""
