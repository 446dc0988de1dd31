"""``python -m chalicelib.scanning.malice``: regenerate ``rules/compiled.json`` after editing a YAML rule pack."""

from chalicelib.scanning.malice.engine import write_compiled

print(write_compiled())
