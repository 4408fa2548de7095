"""Test support shipped with Keel: conformance suites that every backend of a contract passes.

Subclass a suite in your tests and provide its fixture; see each module's docstring.
"""
