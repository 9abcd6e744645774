"""Parts of the seed clients' payment request that we accept and do not keep.

The seed's load test sends `customer` and `billing_address` with each payment. They are
checked like all free text (bounded, no control characters, no card number) so they cannot
smuggle anything in, then dropped: a payment needs neither, and a customer's contact details
and address are data we would otherwise have to protect (docs/compatibility.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from payment_service.schemas.text import free_text


def _free_text(value: object) -> object:
    return free_text(value) if isinstance(value, str) else value


SeedText = Annotated[str, BeforeValidator(_free_text), Field(max_length=200)] | None


class _Dropped(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeedCustomer(_Dropped):
    """`customer`: accepted, checked, not kept."""

    id: SeedText = None
    email: SeedText = None
    phone: SeedText = None


class SeedAddress(_Dropped):
    """`billing_address`: accepted, checked, not kept."""

    street: SeedText = None
    city: SeedText = None
    state: SeedText = None
    zip_code: SeedText = None
    country: SeedText = None
