"""How a customer is found: identity keys, the search form of its text, its name key."""

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import phonenumbers

from app.core.text import digits, search_form
from app.domain.customer.entities import Customer

EMAIL = "email"
PHONE = "phone"
EXTERNAL = "external"


class IdentityKey(NamedTuple):
    """A key that finds a customer. A tuple: a batch makes several per item, and a frozen
    dataclass costs several times as much to build and hash."""

    kind: str
    source: str
    value: str

    def describe(self) -> str:
        if self.kind == EXTERNAL:
            return f"external id {self.source}:{self.value}"
        return f"{self.kind} {self.value}"


def email_key(email: str) -> IdentityKey:
    return IdentityKey(EMAIL, "", email.casefold())


def external_key(source: str, external_id: str) -> IdentityKey:
    return IdentityKey(EXTERNAL, source, external_id)


def keys_of(
    emails: Iterable[str], phones: Iterable[str], external_ids: Mapping[str, str]
) -> set[IdentityKey]:
    keys = {email_key(email) for email in emails}
    keys |= {IdentityKey(PHONE, "", phone) for phone in phones}
    keys |= {external_key(source, value) for source, value in external_ids.items()}
    return keys


def identity_keys(customer: Customer) -> set[IdentityKey]:
    return keys_of(customer.emails, customer.phones, customer.external_ids)


def unique_keys(keys: set[IdentityKey]) -> set[IdentityKey]:
    """The keys that may belong to one customer only."""
    return {key for key in keys if key.kind != PHONE}


_JAPAN = "+81"


def _phone_forms(phone: str) -> list[str]:
    """The digits of an E.164 number as written internationally and nationally."""
    if phone.startswith(_JAPAN):  # the common case, without parsing: +8190... is 090...
        return [phone[1:], "0" + phone[len(_JAPAN) :]]
    number = phonenumbers.parse(phone)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return [digits(phone), digits(national)]


def display_name(customer: Customer) -> str:
    """Family name first, as Japanese names are written; else an email, else empty."""
    parts = [part for part in (customer.family_name, customer.given_name) if part]
    if parts:
        return " ".join(parts)
    return customer.emails[0] if customer.emails else ""


def refresh_derived(customer: Customer, *, explicit_display_name: str | None) -> None:
    """Recomputes the display name (unless the client set one), search text and name key."""
    customer.display_name = explicit_display_name or display_name(customer)
    names = [
        customer.family_name,
        customer.given_name,
        customer.family_name_kana,
        customer.given_name_kana,
    ]
    full_name = "".join(part for part in names[:2] if part)
    full_kana = "".join(part for part in names[2:] if part)
    texts = [customer.display_name, full_name, full_kana, *customer.emails]
    phones = [form for phone in customer.phones for form in _phone_forms(phone)]
    # Newlines separate the parts: a normalised query never contains one, so no match can
    # straddle two fields.
    customer.search_text = "\n".join([*(search_form(t) for t in texts if t), *phones])
    customer.name_key = search_form(full_name) or None
