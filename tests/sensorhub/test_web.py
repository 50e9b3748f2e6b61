"""API docs, OpenAPI schema, metrics, request ids and the admin login as a person uses them."""
import re

import pytest

from tests.factories import make_user


def test_the_openapi_schema_describes_the_api(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith("openapi: 3")
    assert "/api/v1/sensors/" in body


def test_the_interactive_docs_render_from_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    body = response.content.decode()
    bundle = re.search(r'src="([^"]*swagger-ui-bundle[.0-9a-f]*\.js)"', body)
    assert bundle, "the docs page does not load Swagger UI"
    assert bundle.group(1).startswith("/static/"), "Swagger UI must not come from a CDN"
    asset = client.get(bundle.group(1))
    assert asset.status_code == 200


@pytest.mark.django_db
def test_metrics_show_request_counts(client):
    client.get("/health")
    body = client.get("/metrics").content.decode()
    assert re.search(r'django_http_responses_total_by_status_total\{status="200"\} [1-9]', body)
    assert "django_http_requests_latency_seconds_by_view_method" in body


def test_every_response_carries_a_request_id(client):
    generated = client.get("/health")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/health", headers={"X-Request-ID": "gw-42.abc"})["X-Request-ID"] == "gw-42.abc"
    unsafe = client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe)


@pytest.mark.django_db
def test_alice_logs_into_the_admin_with_her_password(client):
    make_user("alice", superuser=True, password="alice pass phrase 7")
    page = client.get("/admin/login/")
    assert page.status_code == 200
    response = client.post("/admin/login/?next=/admin/", {"username": "alice", "password": "alice pass phrase 7",
                                                          "next": "/admin/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/admin/"
    assert "Sites, sensors, models and schedules" in response.content.decode()


@pytest.mark.django_db
def test_the_dashboard_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
