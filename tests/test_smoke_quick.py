from tests.conftest import login


def test_home(client):
    assert client.get("/").status_code == 200


def test_login_logout(client, make_user):
    user = make_user("admin")
    r = login(client, user.email)
    assert r.status_code == 302
    assert client.get("/account").status_code == 200
