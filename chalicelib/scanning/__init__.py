"""Supply-chain scanning domain (no AWS, no Docker): see each module's docstring.

- ``advisories``: offline OSV database with an on-disk compiled index
- ``vulnerabilities``: ``VulnerabilityService`` protocol, offline and pip-audit services
- ``policy``: known vulnerabilities block; expiring admin ignores
- ``typosquats``: popular-name look-alikes (data in ``data/``, see PROVENANCE.md)
- ``code_analysis``: bandit plus skill-specific ``ast`` checks
- ``sbom``: CycloneDX 1.5 JSON for a closure
- ``scanner``: ``Scanner.scan`` -> ``ScanReport`` combining all of the above
"""
