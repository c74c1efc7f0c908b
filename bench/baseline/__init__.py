"""Frozen copies of the implementations before issue #13 (commit ebfc2dc), timed by bench/diff.py
in the same run as today's code so the speed-ups are measured on the same machine and load."""
