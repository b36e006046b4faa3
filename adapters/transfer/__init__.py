"""Moving history in and out of a ledger: ``export`` (JSON Lines) and ``import`` (checked).

``import_file`` appends a checked file in one transaction; ``import_checker`` checks each
line like a command; ``import_schema`` is its compiled fast path; ``import_child`` the
second process that checks a large import while the first one writes.
"""
