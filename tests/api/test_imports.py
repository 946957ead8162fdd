"""Import jobs over HTTP and from the command line."""

import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
from httpx import AsyncClient

from tests.api.factories import make_customer, make_field
from tests.conftest import Tenant
from tests.test_cli import kokyaku


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


async def upload(
    client: AsyncClient,
    tenant: Tenant,
    content: bytes,
    filename: str = "customers.csv",
    **form: str,
) -> Any:
    data = {"object": "customers", **form}
    return await client.post(
        "/v1/imports",
        files={"file": (filename, content, "text/csv")},
        data=data,
        headers=tenant.headers,
    )


async def finished(client: AsyncClient, tenant: Tenant, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    job = await client.get(response.headers["location"], headers=tenant.headers)
    assert job.status_code == 200
    body: dict[str, Any] = job.json()
    return body


async def test_csv_import_with_mapping_creates_updates_and_reports_failed_rows(
    client: AsyncClient, tenant: Tenant
) -> None:
    await make_field(client, tenant, key="points", type="number", label="ポイント")
    existing = await make_customer(client, tenant, external_ids={"shop": "M-2"}, tags=["old"])
    content = csv_bytes(
        [
            [
                "会員ID",
                "姓",
                "名",
                "セイ",
                "メイ",
                "メール",
                "電話",
                "タグ",
                "ポイント",
                "メルマガ",
            ],
            [
                "M-1",
                "山田",
                "太郎",
                "ヤマダ",
                "タロウ",
                "taro@example.jp",
                "090-1234-5678",
                "vip;tea",
                "1,200",
                "はい",
            ],
            ["M-2", "佐藤", "花子", "サトウ", "ハナコ", "hanako@example.jp", "", "", "", "no"],
            ["M-3", "鈴木", "一郎", "スズキ", "イチロウ", "not-an-email", "", "", "", ""],
            ["M-4", "高橋", "", "タカハシ", "", "", "12", "", "many", ""],
        ]
    )
    mapping = {
        "会員ID": "external_ids.shop",
        "姓": "family_name",
        "名": "given_name",
        "セイ": "family_name_kana",
        "メイ": "given_name_kana",
        "メール": "emails",
        "電話": "phones",
        "タグ": "tags",
        "ポイント": "attributes.points",
        "メルマガ": "consents.email",
    }
    job = await finished(
        client, tenant, await upload(client, tenant, content, mapping=json.dumps(mapping))
    )
    assert job["status"] == "completed"
    assert (job["total_rows"], job["processed_rows"]) == (4, 4)
    assert (job["created_count"], job["updated_count"], job["failed_count"]) == (1, 1, 2)
    failed = {row["row"]: row for row in job["failed_rows"]}
    assert set(failed) == {4, 5}
    assert failed[4]["errors"][0]["loc"] == ["emails", 0]
    assert {tuple(e["loc"]) for e in failed[5]["errors"]} >= {("phones", 0)}

    found = await client.get("/v1/customers?q=ﾔﾏﾀﾞ", headers=tenant.headers)
    taro = found.json()["data"][0]
    assert taro["tags"] == ["vip", "tea"]
    assert taro["attributes"] == {"points": 1200}
    assert taro["phones"] == ["+819012345678"]
    assert taro["consents"]["email"]["granted"] is True
    updated = await client.get(f"/v1/customers/{existing['id']}", headers=tenant.headers)
    assert updated.json()["family_name"] == "佐藤"

    errors = await client.get(f"/v1/imports/{job['id']}/errors?limit=1", headers=tenant.headers)
    assert [row["row"] for row in errors.json()["data"]] == [4]
    assert errors.json()["next_cursor"] is not None


async def test_shift_jis_csv_from_excel(client: AsyncClient, tenant: Tenant) -> None:
    content = csv_bytes(
        [["family_name", "given_name", "emails"], ["渡辺", "健", "ken@example.jp"]], "cp932"
    )
    garbled = await upload(client, tenant, content)
    assert garbled.status_code == 422
    job = await finished(
        client, tenant, await upload(client, tenant, content, encoding="shift_jis")
    )
    assert job["created_count"] == 1
    found = await client.get("/v1/customers?q=渡辺", headers=tenant.headers)
    assert found.json()["data"][0]["given_name"] == "健"


async def test_jsonl_import_of_companies(client: AsyncClient, tenant: Tenant) -> None:
    lines = [
        {"name": "株式会社いろは", "industry": "小売", "employee_count": 30},
        {"name": "", "industry": "IT"},
        {"name": "にほへと合同会社", "domain": "nihoheto.example.jp"},
    ]
    content = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    response = await upload(client, tenant, content, filename="companies.jsonl", object="companies")
    job = await finished(client, tenant, response)
    assert (job["created_count"], job["failed_count"]) == (2, 1)
    assert job["failed_rows"][0]["row"] == 2
    assert job["failed_rows"][0]["errors"][0]["loc"] == ["name"]
    listed = await client.get("/v1/companies?sort=name", headers=tenant.headers)
    assert len(listed.json()["data"]) == 2


async def test_bad_uploads_are_rejected_whole(client: AsyncClient, tenant: Tenant) -> None:
    bad_mapping = await upload(
        client, tenant, csv_bytes([["a"], ["b"]]), mapping=json.dumps({"a": "salary"})
    )
    assert bad_mapping.status_code == 422
    assert bad_mapping.json()["errors"][0]["loc"] == ["body", "mapping", "a"]
    not_json_mapping = await upload(client, tenant, csv_bytes([["a"], ["b"]]), mapping="{")
    assert not_json_mapping.status_code == 422
    empty = await upload(client, tenant, csv_bytes([["emails"]]))
    assert empty.status_code == 422
    unknown_format = await upload(client, tenant, b"x", filename="people.xlsx")
    assert unknown_format.status_code == 422
    bad_jsonl = await upload(client, tenant, b'{"a": 1}\n[1]\n', filename="x.jsonl")
    assert bad_jsonl.status_code == 422
    as_json = await client.post("/v1/imports", json={"object": "customers"}, headers=tenant.headers)
    assert as_json.status_code == 415
    listed = await client.get("/v1/imports", headers=tenant.headers)
    assert listed.json()["data"] == []


async def test_imports_of_another_workspace_are_invisible(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    response = await upload(client, other_tenant, csv_bytes([["emails"], ["x@example.jp"]]))
    job_id = response.json()["id"]
    assert (await client.get(f"/v1/imports/{job_id}", headers=tenant.headers)).status_code == 404
    errors = await client.get(f"/v1/imports/{job_id}/errors", headers=tenant.headers)
    assert errors.status_code == 404


def test_cli_import_with_progress(database_url: str, tmp_path: Path) -> None:
    workspace = f"import-{tmp_path.name[-12:]}"
    assert kokyaku(database_url, "workspace", "create", workspace).returncode == 0
    rows = [["family_name", "emails", "tags"]]
    rows += [[f"顧客{i}", f"c{i}@example.jp", "cli"] for i in range(1200)]
    rows.append(["壊れ", "broken", ""])
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes(rows))
    result = kokyaku(database_url, "import", str(path), "--workspace", workspace)
    assert result.returncode == 3, result.stderr  # finished, with one failed row
    assert "1200 created" in result.stderr
    assert "1 failed" in result.stderr
    assert len(result.stdout.strip()) == 36  # the job id alone on stdout
