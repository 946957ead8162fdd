"""Demo data that looks like a real Japanese shop's: customers and companies for `kokyaku seed`.

The generators (`people`, `companies`) are pure and deterministic: driven by a `random.Random`, they
yield the API's create shapes as plain JSON values, so demos, benchmarks and tests share them. The
`seed_*` functions write them through the services, inside the caller's transaction.
"""

import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, islice
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.values import normalise_phone
from app.domain.company.schemas import CompanyCreate
from app.domain.company.service import CompanyService
from app.domain.customer.service import MAX_BATCH, BatchStatus, CustomerService

SHOP_SOURCE = "shop"
EMAIL_DOMAINS = ("example.jp", "example.com", "example.co.jp")  # reserved for documentation
_EMAIL_DOMAIN_WEIGHTS = (5, 8, 9)  # cumulative: mostly .jp addresses
COMPANY_DOMAIN = "example.co.jp"
MIN_AGE, MAX_AGE = 18, 80

T = TypeVar("T")


class Reading(NamedTuple):
    """A name as written, its reading in katakana, and how it is spelt in ASCII."""

    written: str
    kana: str
    romaji: str


class City(NamedTuple):
    name: str
    area_code: str  # with its leading 0, as dialled inside Japan
    postal_prefixes: tuple[str, ...]  # the first three digits of the city's postal codes


class Prefecture(NamedTuple):
    name: str
    population: int  # 2020 census, in ten thousands: the weight of the prefecture
    cities: tuple[City, ...]


class _Industry(NamedTuple):
    suffix: Reading  # the word that ends the company's name: 商事, 製菓, システムズ ...
    industry: str


def _rows(table: str, width: int) -> list[list[str]]:
    """The words of `table`, `width` to a row, wherever its lines break."""
    words = table.split()
    return [words[i : i + width] for i in range(0, len(words), width)]


def _readings(table: str) -> tuple[Reading, ...]:
    return tuple(Reading(*row) for row in _rows(table, 3))


def _prefectures(table: str) -> tuple[Prefecture, ...]:
    """Parses `name population city:area code:postal prefixes ...`, laid out freely."""
    prefectures: list[Prefecture] = []
    words = iter(table.split())
    for word in words:
        if ":" in word:
            name, area_code, postal = word.split(":")
            city = City(name, area_code, tuple(postal.split(",")))
            last = prefectures[-1]
            prefectures[-1] = last._replace(cities=(*last.cities, city))
        else:
            prefectures.append(Prefecture(word, int(next(words)), ()))
    return tuple(prefectures)


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative weights, so that each `choices` call is a binary search."""
    return list(accumulate(weights))


# Surnames in order of frequency; the last few are old or rare forms of common names (髙, 﨑, 邉,
# and 𠮷 outside the Basic Multilingual Plane) that real customer lists contain and that storage and
# search must carry intact.
FAMILY_NAMES = _readings("""
    佐藤 サトウ sato          鈴木 スズキ suzuki        高橋 タカハシ takahashi
    田中 タナカ tanaka        伊藤 イトウ ito           渡辺 ワタナベ watanabe
    山本 ヤマモト yamamoto    中村 ナカムラ nakamura    小林 コバヤシ kobayashi
    加藤 カトウ kato          吉田 ヨシダ yoshida       山田 ヤマダ yamada
    佐々木 ササキ sasaki      山口 ヤマグチ yamaguchi   松本 マツモト matsumoto
    井上 イノウエ inoue       木村 キムラ kimura        林 ハヤシ hayashi
    斎藤 サイトウ saito       清水 シミズ shimizu       山崎 ヤマザキ yamazaki
    森 モリ mori              池田 イケダ ikeda         橋本 ハシモト hashimoto
    阿部 アベ abe             石川 イシカワ ishikawa    山下 ヤマシタ yamashita
    中島 ナカジマ nakajima    石井 イシイ ishii         小川 オガワ ogawa
    前田 マエダ maeda         岡田 オカダ okada         長谷川 ハセガワ hasegawa
    藤田 フジタ fujita        後藤 ゴトウ goto          近藤 コンドウ kondo
    村上 ムラカミ murakami    遠藤 エンドウ endo        青木 アオキ aoki
    坂本 サカモト sakamoto    斉藤 サイトウ saito       福田 フクダ fukuda
    太田 オオタ ota           西村 ニシムラ nishimura   藤井 フジイ fujii
    金子 カネコ kaneko        岡本 オカモト okamoto     藤原 フジワラ fujiwara
    中野 ナカノ nakano        三浦 ミウラ miura         原田 ハラダ harada
    中川 ナカガワ nakagawa    松田 マツダ matsuda       竹内 タケウチ takeuchi
    小野 オノ ono             田村 タムラ tamura        中山 ナカヤマ nakayama
    和田 ワダ wada            石田 イシダ ishida        森田 モリタ morita
    上田 ウエダ ueda          原 ハラ hara              内田 ウチダ uchida
    柴田 シバタ shibata       酒井 サカイ sakai         宮崎 ミヤザキ miyazaki
    横山 ヨコヤマ yokoyama    高木 タカギ takagi        安藤 アンドウ ando
    宮本 ミヤモト miyamoto    大野 オオノ ono           小島 コジマ kojima
    工藤 クドウ kudo          谷口 タニグチ taniguchi   今井 イマイ imai
    高田 タカダ takada        丸山 マルヤマ maruyama    増田 マスダ masuda
    杉山 スギヤマ sugiyama    村田 ムラタ murata        大塚 オオツカ otsuka
    小山 コヤマ koyama        平野 ヒラノ hirano        菅原 スガワラ sugawara
    久保 クボ kubo
""")
RARE_FAMILY_NAMES = _readings("""
    髙橋 タカハシ takahashi  山﨑 ヤマザキ yamazaki   齋藤 サイトウ saito
    渡邉 ワタナベ watanabe   渡邊 ワタナベ watanabe   濱田 ハマダ hamada
    廣瀬 ヒロセ hirose       𠮷田 ヨシダ yoshida
""")
# Zipf-like: the commonest surname is about ten times as frequent as the 80th; rare forms are rarer.
_FAMILY_POOL = FAMILY_NAMES + RARE_FAMILY_NAMES
_FAMILY_WEIGHTS = _cumulative(
    [1 / (rank + 10) for rank in range(len(FAMILY_NAMES))] + [0.002] * len(RARE_FAMILY_NAMES)
)

# Given names go out of fashion, so they are kept by the decade band their bearers were born in:
# a 75-year-old 陽翔 would look as odd in a demo as a 20-year-old 節子.
OLDER, MIDDLE, YOUNGER = "older", "middle", "younger"  # born before 1965, before 1990, later
GIVEN_NAMES: dict[tuple[str, str], tuple[Reading, ...]] = {
    ("male", OLDER): _readings("""
        清 キヨシ kiyoshi   茂 シゲル shigeru   博 ヒロシ hiroshi   正雄 マサオ masao
        勝 マサル masaru    実 ミノル minoru    進 ススム susumu    明 アキラ akira
        和夫 カズオ kazuo   隆 タカシ takashi   修 オサム osamu     武 タケシ takeshi
    """),
    ("female", OLDER): _readings("""
        和子 カズコ kazuko    幸子 サチコ sachiko   節子 セツコ setsuko   洋子 ヨウコ yoko
        恵子 ケイコ keiko     京子 キョウコ kyoko   久美子 クミコ kumiko  由美子 ユミコ yumiko
        悦子 エツコ etsuko    美智子 ミチコ michiko 順子 ジュンコ junko   弘子 ヒロコ hiroko
    """),
    ("male", MIDDLE): _readings("""
        大輔 ダイスケ daisuke   拓也 タクヤ takuya   健太 ケンタ kenta     直樹 ナオキ naoki
        和也 カズヤ kazuya      達也 タツヤ tatsuya  健一 ケンイチ kenichi 浩二 コウジ koji
        誠 マコト makoto        剛 ツヨシ tsuyoshi   哲也 テツヤ tetsuya   学 マナブ manabu
        聡 サトシ satoshi       太郎 タロウ taro     一郎 イチロウ ichiro
    """),
    ("female", MIDDLE): _readings("""
        智子 トモコ tomoko   裕子 ユウコ yuko     真由美 マユミ mayumi  直美 ナオミ naomi
        明美 アケミ akemi    陽子 ヨウコ yoko     美穂 ミホ miho        愛 アイ ai
        彩 アヤ aya          麻衣 マイ mai        恵 メグミ megumi      香織 カオリ kaori
        由美 ユミ yumi       ゆかり ユカリ yukari 花子 ハナコ hanako
    """),
    ("male", YOUNGER): _readings("""
        翔太 ショウタ shota  蓮 レン ren          大翔 ヒロト hiroto    悠真 ユウマ yuma
        陽翔 ハルト haruto   湊 ミナト minato     颯太 ソウタ sota      大樹 ダイキ daiki
        悠斗 ユウト yuto     樹 イツキ itsuki     陸 リク riku          翔 ショウ sho
        拓海 タクミ takumi   亮 リョウ ryo
    """),
    ("female", YOUNGER): _readings("""
        美咲 ミサキ misaki   さくら サクラ sakura 結衣 ユイ yui         陽菜 ヒナ hina
        葵 アオイ aoi        凛 リン rin          結菜 ユイナ yuina     芽依 メイ mei
        紬 ツムギ tsumugi    莉子 リコ riko       千尋 チヒロ chihiro   七海 ナナミ nanami
        花音 カノン kanon    舞 マイ mai
    """),
}

# name, population (10k, 2020 census), then city:area code:postal code prefixes. Big prefectures
# list a few real cities (wards of the designated cities, as addresses write them); the others
# their capital.
PREFECTURES = _prefectures("""
    北海道 522 札幌市中央区:011:060,064 札幌市北区:011:001 旭川市:0166:070,078
        函館市:0138:040,041
    青森県 124 青森市:017:030,038 八戸市:0178:031,039
    岩手県 121 盛岡市:019:020
    宮城県 230 仙台市青葉区:022:980,981 仙台市泉区:022:981 石巻市:0225:986
    秋田県 96 秋田市:018:010
    山形県 107 山形市:023:990
    福島県 183 福島市:024:960 郡山市:024:963 いわき市:0246:970,971,973
    茨城県 287 水戸市:029:310 つくば市:029:300,305 日立市:0294:316,317,319
    栃木県 193 宇都宮市:028:320,321
    群馬県 194 前橋市:027:371 高崎市:027:370
    埼玉県 734 さいたま市大宮区:048:330 さいたま市浦和区:048:330 川口市:048:332,333
        川越市:049:350 越谷市:048:343
    千葉県 628 千葉市中央区:043:260 船橋市:047:273,274 松戸市:047:270,271 市川市:047:272
    東京都 1405 千代田区:03:100,101,102 港区:03:105,106,107,108 新宿区:03:160,161,162,169
        渋谷区:03:150,151 世田谷区:03:154,155,156,157,158 練馬区:03:176,177,178,179
        大田区:03:143,144,145,146 杉並区:03:166,167,168 足立区:03:120,121,123
        江戸川区:03:132,133,134 八王子市:042:192,193 町田市:042:194,195
    神奈川県 924 横浜市港北区:045:222,223 横浜市青葉区:045:225,227 横浜市中区:045:231
        川崎市中原区:044:211 相模原市中央区:042:252 藤沢市:0466:251
    新潟県 220 新潟市中央区:025:950,951 長岡市:0258:940
    富山県 103 富山市:076:930,939
    石川県 113 金沢市:076:920,921
    福井県 77 福井市:0776:910,918
    山梨県 81 甲府市:055:400
    長野県 205 長野市:026:380,381 松本市:0263:390,399
    岐阜県 198 岐阜市:058:500,501
    静岡県 363 静岡市葵区:054:420 浜松市中央区:053:430,432,433
    愛知県 754 名古屋市中区:052:460 名古屋市千種区:052:464 名古屋市中村区:052:450,453
        豊田市:0565:470,471 岡崎市:0564:444 一宮市:0586:491
    三重県 177 津市:059:514 四日市市:059:510
    滋賀県 141 大津市:077:520
    京都府 258 京都市中京区:075:604 京都市左京区:075:606 京都市伏見区:075:612
    大阪府 884 大阪市北区:06:530,531 大阪市中央区:06:540,541,542 大阪市天王寺区:06:543
        堺市堺区:072:590 東大阪市:06:577,578,579 豊中市:06:560,561 吹田市:06:564,565
    兵庫県 547 神戸市中央区:078:650,651 姫路市:079:670,671,672 西宮市:0798:662,663
        尼崎市:06:660,661
    奈良県 132 奈良市:0742:630,631
    和歌山県 92 和歌山市:073:640,641
    鳥取県 55 鳥取市:0857:680
    島根県 67 松江市:0852:690
    岡山県 189 岡山市北区:086:700,701 倉敷市:086:710
    広島県 280 広島市中区:082:730 福山市:084:720,721
    山口県 134 山口市:083:753,754 下関市:083:750,751
    徳島県 72 徳島市:088:770
    香川県 95 高松市:087:760,761
    愛媛県 133 松山市:089:790,791
    高知県 69 高知市:088:780,781
    福岡県 514 福岡市博多区:092:812 福岡市中央区:092:810 北九州市小倉北区:093:802,803
        久留米市:0942:830
    佐賀県 81 佐賀市:0952:840,849
    長崎県 131 長崎市:095:850,851,852
    熊本県 174 熊本市中央区:096:860,862
    大分県 112 大分市:097:870
    宮崎県 107 宮崎市:0985:880
    鹿児島県 159 鹿児島市:099:890,891,892
    沖縄県 147 那覇市:098:900,901,902
""")
_PREFECTURE_WEIGHTS = _cumulative([prefecture.population for prefecture in PREFECTURES])

# Town names found in many cities, so any of them fits any city.
TOWNS = tuple("本町 中央 栄町 緑町 旭町 東町 幸町 桜町 元町 錦町 若葉 宮前".split())
HOME_BUILDINGS = tuple("メゾン桜 サンハイツ グランドール コーポ青葉 パークハウス ハイツ緑".split())
OFFICE_BUILDINGS = tuple("第一ビル 中央ビル 駅前ビル セントラルビル スカイタワー 本町ビル".split())

# Lifecycle stages as a shop's list looks: most people bought once, some came back, few are VIPs.
STAGE_WEIGHTS = {
    "lead": 15,
    "prospect": 10,
    "customer": 40,
    "repeat": 20,
    "vip": 5,
    "churned": 10,
}
_STAGES = tuple(STAGE_WEIGHTS)
_STAGE_WEIGHTS = _cumulative(list(STAGE_WEIGHTS.values()))
INTEREST_TAGS = ("tea", "matcha", "sweets", "wagashi", "gift")
_BUYER_STAGES = ("customer", "repeat", "vip", "churned")  # people who bought: full records

COMPANY_NAMES = _readings("""
    さくら サクラ sakura           青葉 アオバ aoba               若葉 ワカバ wakaba
    北斗 ホクト hokuto             丸長 マルチョウ marucho        三ツ星 ミツボシ mitsuboshi
    ひかり ヒカリ hikari           東海 トウカイ tokai            日本橋 ニホンバシ nihonbashi
    富士見 フジミ fujimi           緑川 ミドリカワ midorikawa     菊水 キクスイ kikusui
    松風 マツカゼ matsukaze        白鷺 シラサギ shirasagi        常盤 トキワ tokiwa
    千歳 チトセ chitose            共栄 キョウエイ kyoei          協和 キョウワ kyowa
    新光 シンコウ shinko           丸八 マルハチ maruhachi        山一 ヤマイチ yamaichi
    翠 ミドリ midori               山田 ヤマダ yamada             鈴木 スズキ suzuki
    中村 ナカムラ nakamura         ネクスト ネクスト next         サンライズ サンライズ sunrise
    リンクス リンクス links
""")
# The word ending a company's name, and the industry it suggests.
INDUSTRIES = tuple(
    _Industry(Reading(*row[:3]), row[3])
    for row in _rows(
        """
        商事 ショウジ shoji 卸売              物産 ブッサン bussan 卸売
        商店 ショウテン shoten 小売           茶舗 チャホ chaho 小売
        製菓 セイカ seika 製造                食品 ショクヒン shokuhin 製造
        製作所 セイサクショ seisakusho 製造   工業 コウギョウ kogyo 製造
        運輸 ウンユ unyu 物流                 物流 ブツリュウ butsuryu 物流
        システムズ システムズ systems IT      テクノロジー テクノロジー tech IT
        フーズ フーズ foods 飲食              ダイニング ダイニング dining 飲食
        不動産 フドウサン fudosan 不動産      建設 ケンセツ kensetsu 建設
        """,
        4,
    )
)
# Where the legal form goes: 株式会社 before the name is the commonest; a sole trader has none.
LEGAL_FORMS = (
    ("株式会社", True),
    ("株式会社", False),
    ("合同会社", True),
    ("有限会社", True),
    ("", True),
)
_LEGAL_FORM_WEIGHTS = _cumulative([45, 25, 10, 15, 5])
COMPANY_TAGS = ("partner", "supplier", "key_account")


def _half_width_table() -> dict[str, str]:
    """Full-width katakana to half-width (`ダ` to `ﾀﾞ`), as old POS and bank systems export it."""
    table = {unicodedata.normalize("NFKC", chr(code)): chr(code) for code in range(0xFF66, 0xFF9E)}
    for full, half in list(table.items()):
        for mark, half_mark in (("\u3099", "\uff9e"), ("\u309a", "\uff9f")):
            voiced = unicodedata.normalize("NFC", full + mark)
            if len(voiced) == 1:
                table[voiced] = half + half_mark
    return table


_HALF_WIDTH = _half_width_table()


def half_width(katakana: str) -> str:
    return "".join(_HALF_WIDTH.get(char, char) for char in katakana)


def shop_user_id(number: int) -> str:
    """The shop's id of person `number` (1-based), as `external_ids["shop"]` and orders carry it."""
    return f"u-{number}"


def _pick(rng: random.Random, population: Sequence[T], cum_weights: Sequence[float]) -> T:
    return rng.choices(population, cum_weights=cum_weights)[0]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _birthday(rng: random.Random, today: date) -> date:
    """Ages 18 to 80, most between 30 and 60: who buys tea and sweets online."""
    age = round(rng.gauss(46, 14))
    while not MIN_AGE <= age <= MAX_AGE:  # redrawn, as clamping would pile people up at 18 and 80
        age = round(rng.gauss(46, 14))
    latest = _years_before(today, age)  # turns `age` today
    earliest = _years_before(today, age + 1) + timedelta(days=1)  # turns `age` + 1 tomorrow
    return latest - timedelta(days=rng.randrange((latest - earliest).days + 1))


def _generation(born: date) -> str:
    if born.year < 1965:
        return OLDER
    return MIDDLE if born.year < 1990 else YOUNGER


def _given_name(rng: random.Random, born: date) -> Reading:
    gender = rng.choice(("male", "female"))
    # Most people carry a name of their generation; a few an older or newer one.
    generation = _generation(born) if rng.random() < 0.8 else rng.choice((OLDER, MIDDLE, YOUNGER))
    return rng.choice(GIVEN_NAMES[gender, generation])


def mobile_phone(rng: random.Random) -> str:
    """070, 080 or 090 and eight digits, the second block never starting with 0 (unassigned)."""
    number = f"0{rng.choice('789')}0-{rng.randrange(1000, 10000)}-{rng.randrange(10000):04d}"
    style = rng.random()
    if style < 0.15:
        return number.replace("-", "")
    if style < 0.2:
        return "+81 " + number[1:]
    return number


def landline(rng: random.Random, city: City) -> str:
    """A fixed-line number in the city's area code, written `03-1234-5678` or `0466-12-3456`."""
    exchange_digits = 10 - len(city.area_code) - 4  # ten digits in all, the last four the line's
    for _ in range(50):
        exchange = str(rng.randrange(2, 10)) + "".join(
            str(rng.randrange(10)) for _ in range(exchange_digits - 1)
        )
        number = f"{city.area_code}-{exchange}-{rng.randrange(10000):04d}"
        try:
            normalise_phone(number)
        except ValueError:
            # Not every exchange is in use in every area code; libphonenumber knows which are.
            continue
        return number
    raise ValueError(f"No valid number found in area code {city.area_code} ({city.name}).")


def address(rng: random.Random, *, office: bool = False) -> tuple[City, dict[str, Any]]:
    """A postal address somewhere in Japan, weighted by population, and the city it is in."""
    prefecture = _pick(rng, PREFECTURES, _PREFECTURE_WEIGHTS)
    city = rng.choice(prefecture.cities)
    town = rng.choice(TOWNS)
    chome, ban, go = rng.randrange(1, 6), rng.randrange(1, 26), rng.randrange(1, 31)
    result: dict[str, Any] = {
        "postal_code": f"{rng.choice(city.postal_prefixes)}-{rng.randrange(10000):04d}",
        "prefecture": prefecture.name,
        "city": city.name,
        "line1": f"{town}{chome}-{ban}-{go}",
    }
    if office and rng.random() < 0.6:
        result["line2"] = f"{rng.choice(OFFICE_BUILDINGS)} {rng.randrange(1, 13)}F"
    elif not office and rng.random() < 0.3:
        result["line2"] = (
            f"{rng.choice(HOME_BUILDINGS)} {rng.randrange(1, 9)}{rng.randrange(1, 13):02d}"
        )
    return city, result


def _email(rng: random.Random, family: Reading, given: Reading, number: int) -> str:
    # The local part ends in the person's number and names have no digits, so the trailing digits
    # are exactly that number: two people never share an address, whatever names they drew.
    local = rng.choice(
        (
            f"{given.romaji}.{family.romaji}.{number}",
            f"{family.romaji}.{given.romaji}{number}",
            f"{given.romaji[0]}{family.romaji}{number}",
            f"{given.romaji}_{family.romaji}{number}",
            f"{given.romaji}{number}",
        )
    )
    return f"{local}@{_email_domain(rng)}"


def _email_domain(rng: random.Random) -> str:
    return _pick(rng, EMAIL_DOMAINS, _EMAIL_DOMAIN_WEIGHTS)


def people(
    rng: random.Random,
    count: int,
    *,
    start: int = 0,
    company_ids: Sequence[UUID] = (),
    today: date | None = None,
) -> Iterator[dict[str, Any]]:
    """`count` customers in `CustomerCreate` shape, numbered from `start` + 1.

    Emails and shop ids carry the number, so runs over disjoint ranges never collide. Leads and
    prospects have sparser records than buyers, as they do in a real shop; about one in ten people
    is a contact of one of `company_ids`.
    """
    today = today or utcnow().date()
    midnight = datetime.combine(today, time(), UTC)
    for number in range(start + 1, start + count + 1):
        born = _birthday(rng, today)
        family = _pick(rng, _FAMILY_POOL, _FAMILY_WEIGHTS)
        given = _given_name(rng, born)
        stage = _pick(rng, _STAGES, _STAGE_WEIGHTS)
        bought = stage in _BUYER_STAGES
        person: dict[str, Any] = {"family_name": family.written, "given_name": given.written}
        if rng.random() < 0.95:
            # Some legacy systems only ever stored half-width kana.
            convert: Callable[[str], str] = half_width if rng.random() < 0.03 else str
            person["family_name_kana"] = convert(family.kana)
            person["given_name_kana"] = convert(given.kana)
        emails = [_email(rng, family, given, number)]
        if rng.random() < 0.05:
            emails.append(f"{family.romaji}.{number}@{_email_domain(rng)}")
        person["emails"] = emails
        city, home = address(rng)
        phones = [mobile_phone(rng)] if rng.random() < (0.85 if bought else 0.5) else []
        if rng.random() < 0.1:
            phones.append(landline(rng, city))
        if phones:
            person["phones"] = phones
        if rng.random() < (0.95 if bought else 0.4):
            person["address"] = home
        if rng.random() < 0.7:
            person["birthday"] = born.isoformat()
        person["external_ids"] = {SHOP_SOURCE: shop_user_id(number)}
        person["lifecycle_stage"] = stage
        # The newsletter tag follows the email consent, as a shop's mailing list would.
        consent = rng.random() < 0.8
        granted = consent and rng.random() < 0.6
        tags = rng.sample(INTEREST_TAGS, k=rng.choice((0, 1, 1, 2, 3)))
        if granted:
            tags.insert(0, "newsletter")
        if stage == "vip":
            tags.append("vip")
        person["tags"] = tags
        if consent:
            given_at = midnight - timedelta(seconds=rng.randrange(3 * 365 * 86400))
            person["consents"] = {
                "email": {
                    "granted": granted,
                    "at": given_at.isoformat(),
                    "source": "checkout" if rng.random() < 0.6 else "signup",
                }
            }
        if rng.random() < 0.1 and company_ids:
            person["company_id"] = str(rng.choice(company_ids))
        yield person


def companies(rng: random.Random, count: int, *, start: int = 0) -> Iterator[dict[str, Any]]:
    """`count` companies in `CompanyCreate` shape, numbered from `start` + 1.

    Names follow the usual patterns (株式会社さくら商事, 山田製菓株式会社, 合同会社ネクスト
    システムズ); the kana leaves out the legal form, as Japanese registers sort them. Domains carry
    the number, so they are unique across disjoint ranges.
    """
    for number in range(start + 1, start + count + 1):
        core = rng.choice(COMPANY_NAMES)
        kind = rng.choice(INDUSTRIES)
        form, form_first = _pick(rng, LEGAL_FORMS, _LEGAL_FORM_WEIGHTS)
        trade_name = core.written + kind.suffix.written
        city, office = address(rng, office=True)
        company: dict[str, Any] = {
            "name": form + trade_name if form_first else trade_name + form,
            "name_kana": core.kana + kind.suffix.kana,
            "domain": f"{core.romaji}-{kind.suffix.romaji}-{number}.{COMPANY_DOMAIN}",
            "industry": kind.industry,
            # Log-normal: most are small firms of a dozen or so, a few employ thousands.
            "employee_count": max(1, min(50_000, round(rng.lognormvariate(2.7, 1.3)))),
            "phone": landline(rng, city),
            "address": office,
        }
        if rng.random() < 0.3:
            company["tags"] = [rng.choice(COMPANY_TAGS)]
        yield company


@dataclass(frozen=True, slots=True)
class SeedSummary:
    companies: int = 0
    customers_created: int = 0
    customers_updated: int = 0  # matched by shop id: the slice had been seeded before

    def __add__(self, other: "SeedSummary") -> "SeedSummary":
        return SeedSummary(
            self.companies + other.companies,
            self.customers_created + other.customers_created,
            self.customers_updated + other.customers_updated,
        )


def _rng(seed: int, kind: str, start: int) -> random.Random:
    # A string seed is hashed with SHA-512, so the stream is the same in every process and on every
    # platform; each slice gets its own stream, which lets slices be seeded in any order.
    return random.Random(f"kokyaku-seed/{seed}/{kind}/{start}")  # noqa: S311 (no secrets here)


async def seed_companies(
    session: AsyncSession, context: Context, *, count: int, seed: int = 0, start: int = 0
) -> list[UUID]:
    """Creates companies `start` + 1 .. `start` + `count`; returns their ids, in order."""
    service = CompanyService(session, context)
    ids = []
    for data in companies(_rng(seed, "companies", start), count, start=start):
        company = await service.create(CompanyCreate.model_validate(data))
        ids.append(company.id)
    return ids


async def seed_customers(
    session: AsyncSession,
    context: Context,
    *,
    count: int,
    seed: int = 0,
    start: int = 0,
    company_ids: Sequence[UUID] = (),
    batch_size: int = MAX_BATCH,
    progress: Callable[[int], None] | None = None,
) -> SeedSummary:
    """Creates customers `start` + 1 .. `start` + `count` through the batch upsert.

    The same `seed` and `start` give the same people (ages count from today), and seeding a slice
    again updates its people instead of duplicating them. `progress` is told how many customers
    each batch wrote.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"The batch size must be between 1 and {MAX_BATCH}.")
    if count < 0 or start < 0:
        raise ValueError("The count and start of customers to seed cannot be negative.")
    service = CustomerService(session, context)
    generated = people(_rng(seed, "people", start), count, start=start, company_ids=company_ids)
    created = updated = 0
    while batch := list(islice(generated, batch_size)):
        results = await service.batch(batch)
        failed = [result for result in results if result.status is BatchStatus.ERROR]
        if failed:
            # The generators' data is valid, so this is the workspace's doing: its own lifecycle
            # stages, or a required custom field. The first error names the field.
            error = failed[0].error or RuntimeError("A seeded customer was rejected.")
            error.add_note(f"{len(failed)} of the {len(batch)} customers in the batch failed.")
            raise error
        batch_created = sum(result.status is BatchStatus.CREATED for result in results)
        created += batch_created
        updated += len(results) - batch_created
        # Writes the batch's events too, so that the session holds one batch at a time.
        await session.flush()
        if progress is not None:
            progress(len(batch))
    return SeedSummary(customers_created=created, customers_updated=updated)


async def seed_workspace(
    session: AsyncSession,
    context: Context,
    *,
    customers: int,
    companies: int,
    seed: int = 0,
    batch_size: int = MAX_BATCH,
    progress: Callable[[int], None] | None = None,
) -> SeedSummary:
    """Companies, then customers (a tenth of them their contacts), in the caller's transaction."""
    company_ids = await seed_companies(session, context, count=companies, seed=seed)
    summary = await seed_customers(
        session,
        context,
        count=customers,
        seed=seed,
        company_ids=company_ids,
        batch_size=batch_size,
        progress=progress,
    )
    return SeedSummary(companies=len(company_ids)) + summary
