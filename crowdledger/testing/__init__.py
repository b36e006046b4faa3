"""Stateful fakes of MTurk and Prolific, to test an integration without the network.

They keep state as the real services do and answer through the real client libraries,
the way moto and respx are used: :class:`FakeMTurk` plugs into a real boto3 client,
:class:`FakeMTurkServer` serves the same fake over HTTP for another process,
:class:`FakeProlific` is a respx router behind a real ``httpx.Client``. Each module's
docstring says where it follows the providers' documentation and where it had to choose.
Install with ``pip install 'crowdledger[testing]'``.

Example::

    from crowdledger.testing import FakeMTurk, mturk_client

    fake = FakeMTurk()
    client = mturk_client(fake)          # a real boto3 client whose requests the fake answers
    client.create_worker_block(WorkerId="A1B2C3D4E5F6G7", Reason="spam")
"""

from crowdledger.testing.mturk import FakeMTurk, mturk_client
from crowdledger.testing.mturk_server import FakeMTurkServer
from crowdledger.testing.prolific import FakeProlific

__all__ = ["FakeMTurk", "FakeMTurkServer", "FakeProlific", "mturk_client"]
