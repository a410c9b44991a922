"""The HTTP edge: authentication, error bodies, paging across pages, accounts apart."""

from __future__ import annotations

import uuid

import pymongo
import pytest
from twilio.base.exceptions import TwilioRestException

from shared.secrets import decrypt_secret, encrypt_secret, hash_secret
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, new_sid
from tests.contract import validate_response

pytestmark = pytest.mark.integration

SECRET_KEY = load(CommonSettings, {}).secret_key


def _error_shape(response, status: int, code: int) -> dict:
    body = response.json()
    assert response.status_code == status
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return body


def _add_account(gateway, status: str = "active") -> tuple[str, str]:
    """Another account in the gateway's store, as an operator would add it."""
    sid, token = new_sid(SidPrefix.ACCOUNT), uuid.uuid4().hex
    with pymongo.MongoClient(gateway.env["MONGODB_URL"]) as mongo:
        mongo[gateway.env["MONGODB_DATABASE"]]["accounts"].insert_one({
            "_id": sid, "auth_token_hash": hash_secret(SECRET_KEY, token),
            "auth_token_encrypted": encrypt_secret(SECRET_KEY, token), "status": status,
        })
    return sid, token


def test_missing_or_wrong_credentials_answer_401_in_twilio_shape(gateway, http):
    with gateway.http(auth=(gateway.account_sid, "wrong")) as wrong:
        _error_shape(wrong.get("/v1/Workspaces"), 401, 20003)
    anonymous = http.get("/v1/Workspaces", auth=None, headers={"Authorization": ""})
    _error_shape(anonymous, 401, 20003)
    with pytest.raises(TwilioRestException) as caught:
        gateway.client(auth_token="nope").taskrouter.v1.workspaces.create(friendly_name="x")
    assert (caught.value.status, caught.value.code) == (401, 20003)


def test_suspended_account_answers_403(gateway):
    sid, token = _add_account(gateway, status="suspended")
    with gateway.http(auth=(sid, token)) as session:
        _error_shape(session.get("/v1/Workspaces"), 403, 20403)


def test_unknown_path_and_method_answer_in_twilio_shape(http):
    _error_shape(http.get("/v1/Nothing"), 404, 20404)
    _error_shape(http.put("/v1/Workspaces"), 405, 20004)


def test_bootstrap_account_keeps_its_token_encrypted(gateway):
    with pymongo.MongoClient(gateway.env["MONGODB_URL"]) as mongo:
        doc = mongo[gateway.env["MONGODB_DATABASE"]]["accounts"].find_one(
            {"_id": gateway.account_sid}
        )
    assert gateway.auth_token not in str(doc)
    assert decrypt_secret(SECRET_KEY, doc["auth_token_encrypted"]) == gateway.auth_token


def test_other_accounts_resources_answer_404(gateway, client):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="mine", template="FIFO")
    other_sid, other_token = _add_account(gateway)
    other = gateway.client(other_sid, other_token)

    with pytest.raises(TwilioRestException) as caught:
        other.taskrouter.v1.workspaces(ws.sid).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert ws.sid not in {w.sid for w in other.taskrouter.v1.workspaces.list()}
    with gateway.http(auth=(other_sid, other_token)) as session:
        _error_shape(session.get(f"/v1/Workspaces/{ws.sid}/TaskQueues"), 404, 20404)
        _error_shape(session.post(f"/v1/Workspaces/{ws.sid}/Activities",
                                  data={"FriendlyName": "x"}), 404, 20404)


def test_list_pages_follow_next_page_url_to_the_end(client, http):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="paged")
    activities = client.taskrouter.v1.workspaces(ws.sid).activities
    created = [activities.create(friendly_name=f"A{i}").sid for i in range(8)]

    streamed = [a.sid for a in activities.stream(page_size=3)]

    assert len(streamed) == 11 and streamed[3:] == created
    first = http.get(f"/v1/Workspaces/{ws.sid}/Activities",
                     params={"PageSize": 3, "Available": "false"}).json()
    validate_response("ListActivity", 200, first)
    meta = first["meta"]
    assert meta["page"] == 0 and meta["page_size"] == 3 and meta["previous_page_url"] is None
    assert "Available=false" in meta["next_page_url"] and "PageToken=PA" in meta["next_page_url"]
    second = http.get(meta["next_page_url"]).json()
    assert second["meta"]["page"] == 1
    assert second["meta"]["previous_page_url"].endswith("Available=false&PageSize=3&Page=0")
    assert {a["sid"] for a in second["activities"]}.isdisjoint(
        a["sid"] for a in first["activities"]
    )
    assert all(a["available"] is False for a in first["activities"] + second["activities"])


def test_paging_parameters_are_checked(client, http):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="paging")
    url = f"/v1/Workspaces/{ws.sid}/Activities"
    for params, name in (({"PageSize": 0}, "PageSize"), ({"PageSize": 1001}, "PageSize"),
                         ({"PageSize": "ten"}, "PageSize"), ({"PageToken": "XYZ"}, "PageToken"),
                         ({"PageToken": "PA!!"}, "PageToken")):
        body = _error_shape(http.get(url, params=params), 400, 20001)
        assert name in body["message"]


def test_workspace_list_filters_by_friendly_name(client):
    name = f"unique-{uuid.uuid4().hex[:6]}"
    ws = client.taskrouter.v1.workspaces.create(friendly_name=name)
    assert [w.sid for w in client.taskrouter.v1.workspaces.list(friendly_name=name)] == [ws.sid]


def test_healthz_names_services_that_are_not_ready(http):
    response = http.get("/healthz", auth=None)
    assert response.status_code == 503
    assert response.json()["not_ready"] == [
        "workflow-router", "queue-dispatcher", "statistics", "events"
    ]
