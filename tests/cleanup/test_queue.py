"""The deletion queue at scale, without AWS: filters, pager, tab counts and totals, the answers of
every action (only what changed), approving all matching in the worker, and the wording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import AwsAccount
from audit.models import AuditEvent
from cleanup import stats
from cleanup.actions import approvals
from cleanup.models import BulkApproval, DeletionCheck, Image, Repository
from console import clock
from tests.conftest import rows

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
MB = 1024 * 1024


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


@pytest.fixture
def no_deletion(monkeypatch):
    """Approvals enqueue the deletion on commit; these tests have no AWS: remember the ids."""
    queued: list[list[int]] = []
    monkeypatch.setattr(approvals, "enqueue_deletion", lambda ids: queued.append(list(ids)))
    return queued


def make_queue(
    count: int,
    *,
    account: str = "111111111111",
    repositories: int = 2,
    status: str = "awaiting_approval",
    size: int = 2 * MB,
    trigger: str = "sweep",
    pushed_days_ago: int = 30,
    name: str = "web",
) -> list[DeletionCheck]:
    """``count`` checks over ``repositories`` repositories of one registry, in bulk."""
    registry, _ = AwsAccount.objects.get_or_create(
        account_id=account,
        defaults={"name": f"registry {account}", "is_registry": True, "regions": ["eu-west-1"]},
    )
    repos = [
        Repository.objects.get_or_create(
            account=registry,
            region="eu-west-1",
            name=f"{name}-{n}",
            defaults={
                "arn": f"arn:aws:ecr:eu-west-1:{account}:repository/{name}-{n}",
                "uri": f"{account}.dkr.ecr.eu-west-1.amazonaws.com/{name}-{n}",
                "opted_in": True,
            },
        )[0]
        for n in range(repositories)
    ]
    start = Image.objects.count()
    images = Image.objects.bulk_create(
        Image(
            repository=repos[n % repositories],
            digest=f"sha256:{start + n:064x}",
            tags=[f"v{start + n}"],
            size_bytes=size,
            pushed_at=NOW - timedelta(days=pushed_days_ago),
        )
        for n in range(count)
    )
    return DeletionCheck.objects.bulk_create(
        DeletionCheck(
            image=image,
            status=status,
            trigger=trigger,
            due_at=NOW,
            created_at=NOW,
            updated_at=NOW + timedelta(seconds=n),
            evidence={"outcome": "unused", "reason": "no source references it", "references": []},
        )
        for n, image in enumerate(images)
    )


def hx(client, url, target, **extra):
    return client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target, **extra)


# Pages and fragments: a fixed number of queries, whatever the number of rows -------------------


@pytest.mark.parametrize("count", [3, 120])
def test_the_queue_page_costs_the_same_queries_for_3_or_120_checks(
    count, fixed_clock, viewer_client, django_assert_max_num_queries
):
    make_queue(count)
    with django_assert_max_num_queries(14):
        page = viewer_client.get("/deletions/").content.decode()
    assert page.count('<tr id="check-') == min(count, 50)
    assert ("Next page" in page) is (count > 50)


def test_the_head_and_rows_fragments_are_small_and_cheap(
    fixed_clock, viewer_client, django_assert_max_num_queries
):
    make_queue(120)
    with django_assert_max_num_queries(14):
        head = hx(viewer_client, "/deletions/", "queue-head").content.decode()
    assert head.lstrip().startswith('<div id="queue-head"') and "<tr" not in head
    assert "120 checks awaiting approval, 240.0\xa0MB in all, from 2 repositories." in head
    with django_assert_max_num_queries(14):
        body = hx(viewer_client, "/deletions/?page=3", "queue-rows").content.decode()
    assert body.lstrip().startswith('<tbody id="queue-rows"') and body.count("<tr ") == 20


def test_the_pager_walks_every_check_once(fixed_clock, viewer_client):
    checks = make_queue(120)
    seen: list[int] = []
    for page in (1, 2, 3):
        html = viewer_client.get(f"/deletions/?page={page}").content.decode()
        seen += [check.pk for check in checks if f'id="check-{check.pk}"' in html]
    assert sorted(seen) == sorted(check.pk for check in checks)


# Filters -----------------------------------------------------------------------------------------


def test_filters_narrow_the_rows_the_tabs_and_the_totals(fixed_clock, viewer_client):
    make_queue(4, name="web", size=1 * MB)
    big = make_queue(2, name="api", repositories=1, size=50 * MB, trigger="manual")
    other = make_queue(3, account="999999999999", name="batch", pushed_days_ago=1)

    page = viewer_client.get("/deletions/?min_mb=10").content.decode()
    assert {pk for pk in (c.pk for c in big) if f'id="check-{pk}"' in page} == {c.pk for c in big}
    assert page.count('<tr id="check-') == 2
    assert "2 checks awaiting approval, 100.0\xa0MB in all, from 1 repository (filtered)." in page

    page = viewer_client.get("/deletions/?account=999999999999").content.decode()
    assert page.count('<tr id="check-') == 3 and f'id="check-{other[0].pk}"' in page

    page = viewer_client.get("/deletions/?older_days=7").content.decode()
    assert page.count('<tr id="check-') == 6

    page = viewer_client.get("/deletions/?trigger=manual").content.decode()
    assert page.count('<tr id="check-') == 2

    repository = big[0].image.repository_id
    page = viewer_client.get(f"/deletions/?repository={repository}&status=closed").content.decode()
    assert 'name="check"' not in page and "Nothing here matching the filters." in page
    assert f"repository={repository}&amp;status=awaiting_approval" in page  # tabs keep filters


def test_an_invalid_filter_keeps_the_others_and_says_which(fixed_clock, viewer_client):
    make_queue(3, name="web", repositories=1, size=1 * MB)
    make_queue(2, name="api", repositories=1, size=1 * MB)
    api = Repository.objects.get(name="api-0")

    page = viewer_client.get(f"/deletions/?repository={api.pk}&min_mb=lots").content.decode()

    assert page.count('<tr id="check-') == 2  # the repository filter still applies
    assert "Larger than (MB) ignored: Enter a number." in page
    assert f'<option value="{api.pk}" selected>' in page
    assert 'name="min_mb" size="6" value="lots"' in page  # what was typed stays to be corrected


# Actions: only what changed, every count refreshed, a message where the action happened ---------


def test_approving_nothing_is_refused_and_changes_nothing(
    fixed_clock, operator_client, no_deletion
):
    make_queue(3)
    before = rows(DeletionCheck, AuditEvent)

    answer = operator_client.post("/deletions/approve/", {}, HTTP_HX_REQUEST="true")
    plain = operator_client.post("/deletions/approve/", {}, follow=True)

    assert "Select at least one check to approve: nothing changed." in answer.content.decode()
    assert "HX-Trigger" not in answer
    assert "Select at least one check to approve: nothing changed." in plain.content.decode()
    assert rows(DeletionCheck, AuditEvent) == before and no_deletion == []


def test_the_approve_button_starts_disabled_and_says_what_it_deletes(fixed_clock, operator_client):
    make_queue(2)
    page = operator_client.get("/deletions/").content.decode()
    assert 'data-confirm-selection="#queue-rows input[name=check]:checked"' in page
    assert 'data-bytes="2097152"' in page and "data-repository=" in page


def test_an_approval_answers_with_the_changed_rows_and_refreshes_the_counts(
    fixed_clock, operator_client, no_deletion, django_assert_max_num_queries
):
    checks = make_queue(60)
    picked = [checks[0].pk, checks[1].pk]

    with django_assert_max_num_queries(20):
        answer = operator_client.post(
            "/deletions/approve/", {"check": picked}, HTTP_HX_REQUEST="true"
        )

    body = answer.content.decode()
    assert body.count("<tr ") == 2 and 'data-status="approved"' in body
    assert "Approved 2 checks." in body
    assert answer["HX-Trigger"] == "queue-changed"
    assert 'id="queue-watch"' in body and 'hx-trigger="every 2s"' in body  # watch the deletion
    head = hx(operator_client, "/deletions/", "queue-head").content.decode()
    assert "58 checks awaiting approval" in head
    assert 'id="tab-approved"' in head and 'Approved, deleting <span class="badge">2</span>' in head


def test_an_approval_of_many_costs_few_queries(
    fixed_clock, operator_client, no_deletion, django_assert_max_num_queries
):
    checks = make_queue(50)
    # One insert per audit event (the audit log is written row by row, by design); the rest is
    # constant: the checks are loaded and updated in one statement each.
    with django_assert_max_num_queries(50 + 20):
        operator_client.post(
            "/deletions/approve/", {"check": [c.pk for c in checks]}, HTTP_HX_REQUEST="true"
        )
    assert DeletionCheck.objects.filter(status="approved").count() == 50


def test_the_watch_sends_rows_once_final_and_stops_polling(fixed_clock, viewer_client):
    checks = make_queue(2, status="approved")
    query = f"/deletions/watch/?watch={checks[0].pk}&watch={checks[1].pk}"

    waiting = viewer_client.get(query, HTTP_HX_REQUEST="true")
    assert waiting.status_code == 200 and "<tr" not in waiting.content.decode()
    assert "HX-Trigger" not in waiting

    DeletionCheck.objects.filter(pk=checks[0].pk).update(status="deleted")
    one = viewer_client.get(query, HTTP_HX_REQUEST="true")
    assert one.status_code == 200 and one["HX-Trigger"] == "queue-changed"
    assert f'<tr id="check-{checks[0].pk}"' in one.content.decode()
    assert 'data-status="deleted"' in one.content.decode()

    DeletionCheck.objects.filter(pk=checks[1].pk).update(status="deleted")
    final = viewer_client.get(query, HTTP_HX_REQUEST="true")
    assert final.status_code == 286  # htmx stops polling


@pytest.mark.parametrize(("count", "words"), [(1, "Rejected 1 check."), (3, "Rejected 3 checks.")])
def test_reject_says_how_many_in_words_and_clears_its_reason(
    count, words, fixed_clock, operator_client
):
    checks = make_queue(count)
    answer = operator_client.post(
        "/deletions/reject/",
        {"check": [c.pk for c in checks], "reject_reason": "release candidate"},
        HTTP_HX_REQUEST="true",
    )
    body = answer.content.decode()
    assert words in body
    assert '<input type="text" name="reject_reason" id="reject-reason" hx-swap-oob="true"' in body
    assert 'value="release candidate"' not in body
    assert DeletionCheck.objects.filter(status="rejected").count() == count


def test_protect_has_its_own_reason_field(fixed_clock, operator_client):
    checks = make_queue(1)
    operator_client.post(
        "/deletions/protect/",
        {"check": [checks[0].pk], "protect_reason": "audit evidence", "reject_reason": "other"},
    )
    image = Image.objects.get(pk=checks[0].image_id)
    assert image.protected and image.protected_reason == "audit evidence"


def test_a_viewer_cannot_approve_all_matching(fixed_clock, viewer_client, no_deletion):
    make_queue(3)
    before = rows(DeletionCheck, BulkApproval, AuditEvent)
    answer = viewer_client.post("/deletions/approve/", {"all_matching": "1", "expected": "3"})
    assert answer.status_code == 403
    assert rows(DeletionCheck, BulkApproval, AuditEvent) == before


# Approve all matching: the worker does it, the page shows the progress ------------------------


def test_approve_all_matching_is_done_by_the_worker_with_progress(
    fixed_clock, operator_client, no_deletion, django_capture_on_commit_callbacks
):
    make_queue(70, name="web", size=1 * MB)
    make_queue(5, account="999999999999", name="api", repositories=1, size=100 * MB)
    page = operator_client.get("/deletions/?account=111111111111").content.decode()
    assert "Select all 70 matching checks (70.0\xa0MB, from 2 repositories)" in page
    assert 'data-count="70"' in page and 'name="account" value="111111111111"' in page

    with django_capture_on_commit_callbacks(execute=True):
        answer = operator_client.post(
            "/deletions/approve/",
            {"all_matching": "1", "expected": "70", "account": "111111111111"},
            HTTP_HX_REQUEST="true",
        )

    assert "Approving 70 checks in the background" in answer.content.decode()
    assert answer["HX-Trigger"] == "queue-changed"
    job = BulkApproval.objects.get()
    assert job.status == "finished" and (job.total, job.done, job.approved) == (70, 70, 70)
    assert set(
        DeletionCheck.objects.filter(
            image__repository__account__account_id="111111111111"
        ).values_list("status", flat=True)
    ) == {"approved"}
    assert set(
        DeletionCheck.objects.filter(
            image__repository__account__account_id="999999999999"
        ).values_list("status", flat=True)
    ) == {"awaiting_approval"}
    assert sum(len(ids) for ids in no_deletion) == 70
    head = hx(operator_client, f"/deletions/?watch_job={job.pk}", "queue-head")
    assert "Bulk approval by oscar finished: 70 checks approved of 70." in head.content.decode()
    assert head["HX-Trigger"] == "queue-reload"


def test_approve_all_matching_is_refused_when_the_queue_moved(
    fixed_clock, operator_client, no_deletion
):
    make_queue(3)
    before = rows(DeletionCheck, BulkApproval, AuditEvent)
    answer = operator_client.post(
        "/deletions/approve/", {"all_matching": "1", "expected": "2"}, HTTP_HX_REQUEST="true"
    )
    assert "The queue changed: 3 checks match now, not the 2 you confirmed." in (
        answer.content.decode()
    )
    assert rows(DeletionCheck, BulkApproval, AuditEvent) == before


def test_a_bulk_job_runs_once_even_if_delivered_twice(db, fixed_clock, no_deletion):
    checks = make_queue(3)
    job = approvals.do_start_bulk_approval(
        [c.pk for c in checks], actor="oscar", filters={}, total_bytes=0, now=NOW
    )
    assert approvals.run_bulk_approval(job.pk, now=NOW) is not None
    assert approvals.run_bulk_approval(job.pk, now=NOW) is None
    assert AuditEvent.objects.filter(action="check.approved").count() == 3


# Wording and accessibility ------------------------------------------------------------------------


def test_rows_are_labelled_with_the_image_and_no_header_is_empty(fixed_clock, viewer_client):
    checks = make_queue(1)
    page = viewer_client.get("/deletions/").content.decode()
    label = checks[0].image.label
    assert label.startswith("web-0:v") and "@" in label
    assert f'aria-label="Select {label}"' not in page  # a viewer has no checkbox to label
    assert "<th></th>" not in page and '<span class="visually-hidden">Select</span>' in page


def test_operator_row_checkbox_names_the_image(fixed_clock, operator_client):
    checks = make_queue(1)
    page = operator_client.get("/deletions/").content.decode()
    assert f'aria-label="Select {checks[0].image.label}"' in page
    assert "select check" not in page


def test_the_repository_list_asks_before_an_opt_out_that_cancels_checks(
    fixed_clock, operator_client
):
    make_queue(4, repositories=1)
    page = operator_client.get("/repositories/").content.decode()
    assert "Opt out cancels 4 open checks of web-0" in page
    assert "<th></th>" not in page


def test_the_repository_list_is_paged_and_its_queries_do_not_grow_with_rows(
    fixed_clock, viewer_client, django_assert_max_num_queries
):
    from cleanup import views

    make_queue(views.REPOSITORIES_PAGE + 5, repositories=views.REPOSITORIES_PAGE + 5, name="r")
    with django_assert_max_num_queries(10):
        first = viewer_client.get("/repositories/").content.decode()
    second = viewer_client.get("/repositories/?page=2").content.decode()

    names = sorted(f"r-{n}" for n in range(views.REPOSITORIES_PAGE + 5))
    assert f">{names[0]}<" in first and f">{names[-1]}<" not in first
    assert f">{names[-1]}<" in second and f">{names[0]}<" not in second
    assert 'rel="next"' in first and 'rel="prev"' in second and 'rel="next"' not in second
    assert "First page" in viewer_client.get("/repositories/?page=9").content.decode()
    assert 'rel="prev"' not in viewer_client.get("/repositories/?page=x").content.decode()


def test_the_tile_writes_money_as_dollars(fixed_clock, viewer_client):
    make_queue(1)
    page = viewer_client.get("/").content.decode()
    assert "saving about $0.00 a month" in page


# Figures for the dashboard ----------------------------------------------------------------------


def test_stats_reclaimable_by_repository_and_reclaimed_by_week(db, fixed_clock):
    make_queue(3, name="web", repositories=1, size=1 * MB)
    make_queue(1, name="api", repositories=1, size=5 * MB)
    deleted = make_queue(2, name="old", repositories=1, status="deleted", size=2 * MB)
    DeletionCheck.objects.filter(pk=deleted[0].pk).update(
        bytes_reclaimed=2 * MB, updated_at=NOW - timedelta(days=7)
    )
    DeletionCheck.objects.filter(pk=deleted[1].pk).update(bytes_reclaimed=2 * MB)

    by_repository = stats.reclaimable_by_repository()
    assert [(row.name, row.bytes, row.images) for row in by_repository] == [
        ("api-0", 5 * MB, 1),
        ("web-0", 3 * MB, 3),
    ]
    weeks = stats.reclaimed_by_week(weeks=3, now=NOW)
    assert [week.bytes for week in weeks] == [0, 2 * MB, 2 * MB]
    assert weeks[-1].week.weekday() == 0 and weeks[-1].week <= NOW.date()


def test_a_running_bulk_approval_shows_its_progress_and_the_head_polls(
    db, fixed_clock, viewer_client
):
    BulkApproval.objects.create(
        actor="oscar", created_at=NOW, status="running", total=2400, done=800, approved=790
    )
    head = hx(viewer_client, "/deletions/", "queue-head").content.decode()
    assert '<progress max="2400" value="800">33%</progress>' in head
    assert "Approving 2,400 checks for oscar: 800 looked at, 790 approved so far." in head
    assert 'hx-trigger="queue-changed from:body, every 2s"' in head


def test_a_closed_tab_counts_without_summing_and_rows_reload_with_their_watcher(
    fixed_clock, viewer_client
):
    make_queue(3, status="deleted")
    make_queue(2, status="approved")
    head = hx(viewer_client, "/deletions/?status=closed", "queue-head").content.decode()
    assert '<p id="queue-summary">3 checks closed.</p>' in head
    rows_answer = hx(viewer_client, "/deletions/?status=approved", "queue-rows").content.decode()
    assert 'id="queue-watch" hidden hx-swap-oob="true"' in rows_answer
    assert 'hx-trigger="every 2s"' in rows_answer and rows_answer.count('name="watch"') == 2


@pytest.mark.parametrize(("asked", "tab"), [("deleted", "closed"), ("running", "scheduled")])
def test_a_link_naming_one_status_opens_its_tab(asked, tab, fixed_clock, viewer_client):
    make_queue(1, status=asked)
    page = viewer_client.get(f"/deletions/?status={asked}").content.decode()
    assert f'id="tab-{tab}" aria-current="page"' in page and "ignored" not in page


def test_an_unknown_tab_is_named_and_the_queue_opens_on_awaiting(fixed_clock, viewer_client):
    make_queue(2)
    page = viewer_client.get("/deletions/?status=banana&min_mb=1").content.decode()
    assert "Status ignored: &#x27;banana&#x27; is not a tab of the queue." in page
    assert 'id="tab-awaiting_approval" aria-current="page"' in page
    assert page.count('<tr id="check-') == 2  # min_mb=1 still applies (2 MB images)


def test_every_status_of_a_check_shows_in_exactly_one_tab():
    from cleanup.forms import QUEUE_TABS
    from cleanup.models import DeletionCheck

    in_tabs = [status for _, statuses in QUEUE_TABS.values() for status in statuses]
    assert sorted(in_tabs) == sorted(DeletionCheck.Status.values)
