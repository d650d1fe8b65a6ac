"""Corpora shipped with the package (`everyday-koen/`, the demo's) and `check`, which holds them to their rules."""
