"""The options every command that talks to a provider takes, declared once.

Kept apart from the sync's commands so that a light command (``review queue``, whose
module registers ``review push``) can name them without importing the sync and the
provider adapters.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

__all__ = ["BaseUrl", "EndpointUrl", "ProviderName", "ProviderOption", "Sandbox", "Timeout"]


class ProviderName(StrEnum):
    mturk = "mturk"
    prolific = "prolific"


ProviderOption = Annotated[ProviderName, typer.Option("--provider", help="Which provider.")]
Sandbox = Annotated[bool, typer.Option("--sandbox", help="MTurk: the requester sandbox.")]
EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url", metavar="URL", help="MTurk: another endpoint (a proxy, a fake)."
    ),
]
BaseUrl = Annotated[
    str,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="Prolific: the API, as https://api.prolific.com or with its /api/v1/ path.",
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="S",
        min=0.1,
        help="Seconds to wait for a connection and for each reply; a call is given up "
        "after 3 tries without any.",
    ),
]
