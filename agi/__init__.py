"""Asterisk AGI adapters: the FastAGI server (``agi.server``) and the classic script (``agi.classic``).

Both only translate the AGI protocol; the hooks live in :mod:`calltracking.hooks`.
"""
