"""The corpus is material for the scanner and the parser, never a test suite: real skills bundle
their own test_*.py files and the malicious cases must not be imported."""

collect_ignore = ["benign", "malicious"]
