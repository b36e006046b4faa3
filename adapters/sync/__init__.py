"""Keeping providers in line with the ledger, whichever provider it is.

``engine`` plans the difference between what the ledger decides and what the provider
holds, queues it in the durable outbox and sends it; ``lease`` keeps one sender per
provider account; ``provider_state`` reads the facts and the outbox; ``ingest`` records
work done on a provider, each piece once. The providers themselves live in
:mod:`crowdledger.adapters.mturk` and :mod:`crowdledger.adapters.prolific`.
"""
