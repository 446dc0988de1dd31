"""The ``skillharbor`` command line: a thin client of the HTTP API (see main.py)."""
