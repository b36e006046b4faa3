"""Prolific through httpx: participant groups, study filters, submissions.

``provider`` holds :class:`ProlificSync` and the httpx client factory; it never imports
the MTurk adapter (an import-linter contract).
"""
