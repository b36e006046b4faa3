"""Amazon Mechanical Turk through boto3: qualification types, worker blocks, assignments.

``provider`` holds :class:`MTurkSync` and the boto3 client factory; it never imports
the Prolific adapter (an import-linter contract).
"""
