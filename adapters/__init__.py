"""Everything that touches the world, one subpackage per thing touched.

``ledger`` (the :class:`~crowdledger.Ledger` service: commands, reads, automations),
``store`` (SQLite and PostgreSQL), ``transfer`` (export and import), ``sync`` (the
provider-independent plan, outbox and lease), ``mturk`` and ``prolific`` (the two
providers), ``cli`` (the ``crowdledger`` command). See ``ARCHITECTURE.md``.
"""
