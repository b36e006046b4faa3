"""The :class:`Ledger` service: commands that append events, reads, and following the log.

``application`` is the public :class:`Ledger`; ``commands`` the one pipeline every
command (and every automation's action) is recorded through; ``follow`` brings the read
models up to the log and fires automations; ``reads`` the read API shared by the live
ledger and its views of the past; ``eligibility`` the materialised ``eligible_workers``
answer; ``rule_files`` loading rule files from disk.
"""
