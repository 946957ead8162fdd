"""The demo data generators: deterministic, unique where the API needs it, valid and plausible."""

import random
import re
import unicodedata
import uuid
from collections import Counter
from datetime import date
from typing import Any

import pytest

from app.core.values import normalise_phone
from app.domain.access.entities import DEFAULT_LIFECYCLE_STAGES
from app.domain.company.schemas import CompanyCreate
from app.domain.customer.schemas import CustomerCreate
from app.seed import (
    EMAIL_DOMAINS,
    FAMILY_NAMES,
    GIVEN_NAMES,
    INDUSTRIES,
    MAX_AGE,
    MIN_AGE,
    PREFECTURES,
    RARE_FAMILY_NAMES,
    STAGE_WEIGHTS,
    address,
    companies,
    half_width,
    landline,
    mobile_phone,
    people,
)

TODAY = date(2026, 11, 20)
PEOPLE = 5_000
KATAKANA = re.compile(r"^[\u30a1-\u30f6\u30fc]+$")  # ァ .. ヶ and the long vowel mark ー
ROMAJI = re.compile(r"^[a-z]+$")
MOBILE = re.compile(r"^\+81[789]0\d{8}$")


@pytest.fixture(scope="module")
def crowd() -> list[dict[str, Any]]:
    company_ids = [uuid.UUID(int=n) for n in range(1, 21)]
    return list(people(random.Random(42), PEOPLE, company_ids=company_ids, today=TODAY))


@pytest.fixture(scope="module")
def firms() -> list[dict[str, Any]]:
    return list(companies(random.Random(42), 2_000))


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        return [*people(rng, 300, today=TODAY), *companies(rng, 30)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_emails_shop_ids_and_domains_are_unique(
    crowd: list[dict[str, Any]], firms: list[dict[str, Any]]
) -> None:
    emails = [email.casefold() for person in crowd for email in person["emails"]]
    assert len(set(emails)) == len(emails)
    shop_ids = [person["external_ids"]["shop"] for person in crowd]
    assert shop_ids == [f"u-{n}" for n in range(1, PEOPLE + 1)]
    domains = [firm["domain"] for firm in firms]
    assert len(set(domains)) == len(domains)


def test_disjoint_slices_never_collide_even_with_the_same_random_stream() -> None:
    first = list(people(random.Random(3), 500, today=TODAY))
    second = list(people(random.Random(3), 500, start=500, today=TODAY))
    emails = [email for person in first + second for email in person["emails"]]
    assert len(set(emails)) == len(emails)
    assert second[0]["external_ids"] == {"shop": "u-501"}
    later = list(companies(random.Random(3), 50, start=50))
    earlier = list(companies(random.Random(3), 50))
    assert not {f["domain"] for f in earlier} & {f["domain"] for f in later}


def test_every_person_and_company_validates(
    crowd: list[dict[str, Any]], firms: list[dict[str, Any]]
) -> None:
    for person in crowd:
        CustomerCreate.model_validate(person)
    for firm in firms:
        CompanyCreate.model_validate(firm)


def test_phones_are_valid_japanese_numbers(
    crowd: list[dict[str, Any]], firms: list[dict[str, Any]]
) -> None:
    phones = [normalise_phone(phone) for person in crowd for phone in person.get("phones", [])]
    assert all(phone.startswith("+81") for phone in phones)
    mobiles = [phone for phone in phones if MOBILE.match(phone)]
    assert len(mobiles) > PEOPLE * 0.6
    assert all(normalise_phone(firm["phone"]).startswith("+81") for firm in firms)
    rng = random.Random(5)
    assert all(MOBILE.match(normalise_phone(mobile_phone(rng))) for _ in range(5_000))


@pytest.mark.parametrize("prefecture", PREFECTURES, ids=lambda prefecture: prefecture.name)
def test_every_city_has_valid_landlines_in_its_area_code(prefecture: Any) -> None:
    rng = random.Random(prefecture.name)
    for city in prefecture.cities:
        for _ in range(20):
            number = landline(rng, city)
            assert number.startswith(city.area_code + "-")
            assert len(number.replace("-", "")) == 10
            normalise_phone(number)


def test_kana_readings_are_katakana_sometimes_half_width(crowd: list[dict[str, Any]]) -> None:
    readings = [
        person[field]
        for person in crowd
        for field in ("family_name_kana", "given_name_kana")
        if field in person
    ]
    assert len(readings) > PEOPLE
    assert all(KATAKANA.match(unicodedata.normalize("NFKC", kana)) for kana in readings)
    half = [kana for kana in readings if not KATAKANA.match(kana)]
    assert 0 < len(half) < len(readings) * 0.1


def test_name_tables_are_large_and_well_formed() -> None:
    given = [name for names in GIVEN_NAMES.values() for name in names]
    assert len(FAMILY_NAMES) >= 60
    assert len(given) >= 60
    assert {gender for gender, _ in GIVEN_NAMES} == {"male", "female"}
    suffixes = [industry.suffix for industry in INDUSTRIES]
    for reading in [*FAMILY_NAMES, *RARE_FAMILY_NAMES, *given, *suffixes]:
        assert KATAKANA.match(reading.kana), reading
        assert ROMAJI.match(reading.romaji), reading
        assert unicodedata.normalize("NFKC", half_width(reading.kana)) == reading.kana


def test_half_width_splits_voiced_kana() -> None:
    assert half_width("ヤマダ") == "ﾔﾏﾀﾞ"
    assert half_width("ポー") == "ﾎﾟｰ"


def test_prefectures_are_the_47_real_ones_and_all_appear() -> None:
    names = [prefecture.name for prefecture in PREFECTURES]
    assert len(set(names)) == 47
    assert Counter(name[-1] for name in names) == {"県": 43, "府": 2, "都": 1, "道": 1}
    assert {"東京都", "北海道", "大阪府", "京都府", "沖縄県"} <= set(names)
    rng = random.Random(9)
    seen = Counter(address(rng)[1]["prefecture"] for _ in range(20_000))
    assert set(seen) == set(names)
    # Weighted by population: Tokyo is the most common, Tottori among the rarest.
    assert seen.most_common(1)[0][0] == "東京都"
    assert seen["鳥取県"] < seen["福岡県"] / 5


def test_addresses_are_consistent(crowd: list[dict[str, Any]]) -> None:
    cities = {prefecture.name: {c.name for c in prefecture.cities} for prefecture in PREFECTURES}
    postal = {c.name: c.postal_prefixes for prefecture in PREFECTURES for c in prefecture.cities}
    for home in (person["address"] for person in crowd if "address" in person):
        assert home["city"] in cities[home["prefecture"]]
        assert re.fullmatch(r"\d{3}-\d{4}", home["postal_code"])
        assert home["postal_code"][:3] in postal[home["city"]]
        assert re.search(r"\d+-\d+-\d+$", home["line1"])


@pytest.mark.parametrize("today", [TODAY, date(2028, 2, 29), date(2027, 3, 1)])
def test_birthdays_give_ages_from_18_to_80(today: date) -> None:
    born = [
        date.fromisoformat(person["birthday"])
        for person in people(random.Random(11), 3_000, today=today)
        if "birthday" in person
    ]
    ages = [_age(day, today) for day in born]
    assert min(ages) == MIN_AGE
    assert max(ages) == MAX_AGE
    assert 35 < sum(ages) / len(ages) < 55


def test_stages_tags_consents_and_companies_are_plausible(crowd: list[dict[str, Any]]) -> None:
    assert tuple(STAGE_WEIGHTS) == DEFAULT_LIFECYCLE_STAGES
    stages = Counter(person["lifecycle_stage"] for person in crowd)
    assert set(stages) == set(DEFAULT_LIFECYCLE_STAGES)
    assert stages.most_common(1)[0][0] == "customer"
    for person in crowd:
        granted = person.get("consents", {}).get("email", {}).get("granted", False)
        assert ("newsletter" in person["tags"]) == granted
        assert ("vip" in person["tags"]) == (person["lifecycle_stage"] == "vip")
        assert all(email.split("@")[1] in EMAIL_DOMAINS for email in person["emails"])
    contacts = [person for person in crowd if "company_id" in person]
    assert PEOPLE * 0.05 < len(contacts) < PEOPLE * 0.15
    assert {uuid.UUID(person["company_id"]).int for person in contacts} <= set(range(1, 21))
    assert not any("company_id" in person for person in people(random.Random(1), 500))


def test_companies_look_japanese(firms: list[dict[str, Any]]) -> None:
    assert all(firm["domain"].endswith(".example.co.jp") for firm in firms)
    assert all(KATAKANA.match(firm["name_kana"]) for firm in firms)
    forms = Counter(
        next((form for form in ("株式会社", "合同会社", "有限会社") if form in firm["name"]), "")
        for firm in firms
    )
    assert forms.most_common(1)[0][0] == "株式会社"
    assert len(forms) == 4
    sizes = sorted(firm["employee_count"] for firm in firms)
    assert sizes[0] >= 1
    assert sizes[len(sizes) // 2] < 50 < sizes[-1]
    assert len({firm["industry"] for firm in firms}) >= 6
