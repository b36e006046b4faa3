"""The ``crowdledger`` command: a thin skin over :class:`~crowdledger.Ledger`."""
