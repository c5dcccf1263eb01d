"""/dashboard/: members sign in and see their organization's analytics; another organization is a 404;
staff pick any; sign-in is throttled; CSV export; `cobrador user create`."""

import csv
import io

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from cobrador.cli import main
from cobrador.notifications.email_config import FILE_BACKEND
from cobrador.organizations.models import Membership
from cobrador.organizations.services import add_member
from tests.conftest import make_org
from tests.subscriptions.conftest import make_account, make_plan, subscribe, sweep, utc

PASSWORD = "a-long-member-password-7"


def member_of(organization, email="ana@example.com") -> Client:
    with transaction.atomic():
        add_member(organization=organization, email=email, password=PASSWORD)
    client = Client()
    assert client.post("/dashboard/login/", {"username": email, "password": PASSWORD}).status_code == 302
    return client


@pytest.fixture
def acme(db, clock):
    org = make_org("Acme", "live").organization
    org.created_at = utc(2026, 1, 10, 12)
    org.save(update_fields=["created_at"])
    clock.set(utc(2026, 1, 10, 12))
    plan = make_plan(org, amount=10000)
    subscribe(org, make_account(org, name="A"), plan)
    clock.set(utc(2026, 2, 10, 12))
    subscribe(org, make_account(org, name="B"), plan, quantity=3)
    sweep("usage-daily-snapshot", utc(2026, 3, 1, 3, 20))
    sweep("usage-monthly-snapshot", utc(2026, 3, 1, 3, 50))
    clock.set(utc(2026, 3, 1, 15))
    return org


@pytest.fixture
def globex(db):
    return make_org("Globex", "test").organization


def test_signing_out_people_are_sent_to_sign_in(acme):
    response = Client().get(f"/dashboard/{acme.public_id}/")
    assert response.status_code == 302 and response["Location"].startswith("/dashboard/login/")
    assert Client().get("/dashboard/login/").status_code == 200


def test_a_member_lands_on_their_organization_and_sees_its_figures(acme):
    client = member_of(acme)
    home = client.get("/dashboard/")
    assert home.status_code == 302 and home["Location"] == f"/dashboard/{acme.public_id}/"
    page = client.get(home["Location"], {"from": "2026-01-01", "to": "2026-03-01", "interval": "month"})
    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "private, no-store"
    assert 'id="mrr-chart"' in html and 'data-points="3"' in html and 'id="customers-chart"' in html
    assert 'id="kpi-mrr">R$\xa0400,00<' in html or 'id="kpi-mrr">R$ 400,00<' in html
    assert 'class="bar new"' in html and 'id="cohorts"' in html and 'id="funnel"' in html and 'id="recovery"' in html


def test_a_member_of_one_organization_gets_404_for_another(acme, globex):
    client = member_of(acme)
    assert client.get(f"/dashboard/{globex.public_id}/").status_code == 404
    assert client.get(f"/dashboard/{globex.public_id}/export/mrr.csv").status_code == 404
    assert client.get("/dashboard/org_doesnotexist/").status_code == 404
    assert member_of(globex, "bia@example.com").get(f"/dashboard/{acme.public_id}/").status_code == 404


def test_staff_pick_any_organization(acme, globex):
    User.objects.create_user("ops@example.com", "ops@example.com", PASSWORD, is_staff=True)
    client = Client()
    client.post("/dashboard/login/", {"username": "ops@example.com", "password": PASSWORD})
    home = client.get("/dashboard/").content.decode()
    assert acme.public_id in home and globex.public_id in home
    assert client.get(f"/dashboard/{globex.public_id}/").status_code == 200
    assert 'id="organization-select"' in client.get(f"/dashboard/{acme.public_id}/").content.decode()


def test_the_csv_export_is_the_range_on_screen(acme):
    client = member_of(acme)
    response = client.get(f"/dashboard/{acme.public_id}/export/movements.csv",
                          {"from": "2026-02-09", "to": "2026-02-11", "interval": "day"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'{acme.public_id}-movements-day-2026-02-09-2026-02-11.csv' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["period"], r["new"], r["expansion"]) for r in rows] == [
        ("2026-02-09", "0", "0"), ("2026-02-10", "30000", "0"), ("2026-02-11", "0", "0")]
    assert client.get(f"/dashboard/{acme.public_id}/export/other.csv").status_code == 404


def test_a_range_the_api_would_refuse_shows_the_default_and_says_why(acme):
    html = member_of(acme).get(f"/dashboard/{acme.public_id}/", {"from": "2026-03-01", "to": "2026-01-01"})
    assert "from: must not be after to" in html.content.decode()


def test_wrong_passwords_are_throttled(acme, settings):
    settings.AXES_FAILURE_LIMIT = 3
    member_of(acme)
    client = Client()
    for attempt in range(3):
        client.post("/dashboard/login/", {"username": "ana@example.com", "password": f"guess-{attempt}"})
    locked = client.post("/dashboard/login/", {"username": "ana@example.com", "password": PASSWORD})
    assert locked.status_code == 429
    assert client.get(f"/dashboard/{acme.public_id}/").status_code == 302


def test_user_create_makes_a_member_who_can_sign_in(acme, globex, capsys):
    assert main(["user", "create", "--org", acme.public_id, "--email", "Carla@Example.com"]) == 0
    out = capsys.readouterr().out
    password = out.split("password")[1].split()[0]
    client = Client()
    assert client.post("/dashboard/login/", {"username": "carla@example.com", "password": password}).status_code == 302
    assert client.get(f"/dashboard/{acme.public_id}/").status_code == 200
    # The same person in a second organization keeps their password; twice in one is refused.
    assert main(["user", "create", "--org", globex.public_id, "--email", "carla@example.com"]) == 0
    assert "existing user" in capsys.readouterr().out
    assert Membership.objects.filter(user__username="carla@example.com").count() == 2
    assert main(["user", "create", "--org", acme.public_id, "--email", "carla@example.com"]) == 2
    assert "--email carla@example.com is a member" in capsys.readouterr().err
    assert main(["user", "create", "--org", acme.public_id, "--email", "not-an-email"]) == 2
    assert main(["user", "create", "--org", "org_nope", "--email", "x@example.com"]) == 2


def test_the_admin_adds_members_to_an_organization(acme, admin_client):
    user = User.objects.create_user("dora@example.com", "dora@example.com", PASSWORD)
    response = admin_client.post("/admin/organizations/membership/add/",
                                 {"user": user.pk, "organization": acme.pk})
    assert response.status_code == 302
    assert Membership.objects.get(user=user).organization == acme
    assert admin_client.get(f"/admin/organizations/organization/{acme.pk}/change/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_cobrador_simulate_leaves_a_member_whose_dashboard_shows_the_simulated_months(settings, tmp_path, capsys):
    settings.MAIL_DIR = tmp_path / "mails"
    settings.MAILERS = {"default": {"BACKEND": FILE_BACKEND,
                                    "OPTIONS": {"file_path": str(tmp_path / "mails")}}}
    assert main(["simulate", "--days", "36", "--accounts", "8", "--quiet",
                 "--start", "2026-01-25T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    hint = out[out.index("Dashboard: "):]
    url = hint.split("then open ")[1].split()[0]
    password = hint.split("(password ")[1].split(")")[0]
    assert "cobrador web" in hint and "?from=2026-01-25&to=2026-03-02&interval=month" in url
    client = Client()
    assert client.post("/dashboard/login/", {"username": "demo@example.com", "password": password}).status_code == 302
    page = client.get(url.removeprefix(settings.PUBLIC_URL))
    html = page.content.decode()
    assert page.status_code == 200
    # January, February and March, from the snapshots the simulated jobs wrote (and the ledger since).
    assert 'data-points="3"' in html and 'class="bar new"' in html
