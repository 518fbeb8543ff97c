"""The core layer: settings, the warehouse connection and the raw-source contract.

Everything else imports from here; this package imports nothing of the project's own above it
(tests/test_layers.py checks that).
"""
