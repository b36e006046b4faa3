"""Tamper evidence for the event log: a hash chain, Merkle trees, signed checkpoints, proofs.

``chain`` defines the canonical bytes of a stored event and chains each event's SHA-256 over
its predecessor's, with a streaming verifier that names the first row that breaks the chain
and how (changed, missing, inserted, reordered); ``merkle`` builds RFC 9162 Merkle tree
hashes over the event hashes in O(log n) memory, with inclusion and consistency proofs and
their verifiers; ``keys`` creates and loads Ed25519 key files; ``checkpoint`` signs and
verifies ``{position, root, time}`` documents kept outside the database; ``proof`` writes and
checks, offline, the inclusion proof of one event; ``log_audit`` runs all of it over a
stream of stored rows. Nothing here reads the database: callers feed rows in order.
"""
