from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts import actions, organizations, users
from accounts.forms import AccountEditForm, AccountForm, InviteUserForm, OrganizationForm, RoleForm
from accounts.models import AwsAccount, OrganizationMember
from accounts.roles import ROLE_CHOICES
from console.http import HtmxRequest, actor_of, htmx_partial


@require_GET
@permission_required("accounts.view_awsaccount", raise_exception=True)
def account_list(request: HtmxRequest) -> HttpResponse:
    context = {
        "accounts": AwsAccount.objects.select_related("membership"),
        "organization": organizations.get_organization(),
    }
    return render(request, "accounts/list.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("accounts.add_awsaccount", raise_exception=True)
def account_add(request: HtmxRequest) -> HttpResponse:
    form = AccountForm(request.POST or None, initial={"regions": "eu-west-1"})
    if request.method == "POST" and form.is_valid():
        fields = {
            name: value
            for name, value in form.cleaned_data.items()
            if name not in {"account_id", "name"}
        }
        try:
            account = actions.do_add_account(
                actor=actor_of(request),
                account_id=form.cleaned_data["account_id"],
                name=form.cleaned_data["name"],
                **fields,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Account {account} added. Verify it to check the role.")
            return redirect("accounts:list")
    return render(request, "accounts/form.html", {"form": form, "title": "Add an AWS account"})


@require_http_methods(["GET", "POST"])
@permission_required("accounts.change_awsaccount", raise_exception=True)
def account_edit(request: HtmxRequest, account_id: str) -> HttpResponse:
    account = get_object_or_404(AwsAccount, account_id=account_id)
    form = AccountEditForm(request.POST or None, instance=AwsAccount.objects.get(pk=account.pk))
    if request.method == "POST" and form.is_valid():
        try:
            changed = actions.do_update_account(
                account, actor=actor_of(request), **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, f"Account {account} saved." if changed else "Nothing changed."
            )
            return redirect("accounts:list")
    return render(
        request,
        "accounts/form.html",
        {"form": form, "title": f"Edit {account}", "account": account},
    )


@require_POST
@permission_required("accounts.change_awsaccount", raise_exception=True)
def account_disable(request: HtmxRequest, account_id: str) -> HttpResponse:
    account = get_object_or_404(AwsAccount, account_id=account_id)
    actions.do_disable_account(account, actor=actor_of(request))
    if htmx_partial(request):
        return render(request, "accounts/list.html#row", {"account": account})
    messages.success(request, f"Account {account} disabled.")
    return redirect("accounts:list")


@require_POST
@permission_required("accounts.verify_awsaccount", raise_exception=True)
def account_verify(request: HtmxRequest, account_id: str) -> HttpResponse:
    account = get_object_or_404(AwsAccount, account_id=account_id)
    ok = actions.do_verify_account(account, actor=actor_of(request))
    if htmx_partial(request):
        return render(request, "accounts/list.html#row", {"account": account})
    if ok:
        messages.success(request, f"Account {account} verified.")
    else:
        messages.error(
            request, f"Account {account} failed verification: {account.last_verification_error}"
        )
    return redirect("accounts:list")


# --- The organization (/accounts/organization/) ------------------------------------------------


@require_http_methods(["GET", "POST"])
@permission_required(
    ["accounts.add_organization", "accounts.change_organization"], raise_exception=True
)
def organization(request: HtmxRequest) -> HttpResponse:
    """Connect the organization, or edit it once connected (admins only)."""
    current = organizations.get_organization()
    initial = {"regions": [settings.AWS_DEFAULT_REGION]} if current is None else None
    # The form gets its own copy: validating it writes the new values onto its instance.
    copy = organizations.get_organization()
    form = OrganizationForm(request.POST or None, instance=copy, initial=initial)
    if request.method == "POST" and form.is_valid():
        actor = actor_of(request)
        try:
            if current is None:
                organizations.do_connect_organization(actor=actor, **form.cleaned_data)
                messages.success(request, "Organization connected; its first pass is queued.")
            else:
                changed = organizations.do_update_organization(
                    current, actor=actor, **form.cleaned_data
                )
                messages.success(request, "Organization saved." if changed else "Nothing changed.")
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("accounts:organization")
    counts = {
        state: OrganizationMember.objects.filter(state=state).count()
        for state in OrganizationMember.State
    }
    context = {"form": form, "organization": current, "counts": counts}
    return render(request, "accounts/organization.html", context)


@require_POST
@permission_required("accounts.delete_organization", raise_exception=True)
def organization_disconnect(request: HtmxRequest) -> HttpResponse:
    current = organizations.get_organization()
    if current is None:
        messages.info(request, "No organization is connected.")
        return redirect("accounts:list")
    kept = organizations.do_disconnect_organization(current, actor=actor_of(request))
    messages.success(
        request, f"Organization disconnected. Its {kept} accounts stay registered as they are."
    )
    if htmx_partial(request):
        return HttpResponseClientRedirect(reverse("accounts:list"))
    return redirect("accounts:list")


@require_POST
@permission_required("accounts.change_organization", raise_exception=True)
def organization_sync(request: HtmxRequest) -> HttpResponse:
    if organizations.get_organization() is None:
        messages.info(request, "No organization is connected.")
        return redirect("accounts:list")
    organizations.enqueue_sync()
    messages.success(request, "A pass over the organization is queued.")
    return redirect("accounts:organization")


# --- Users (/users/) -----------------------------------------------------------------------------


@require_GET
@permission_required("auth.view_user", raise_exception=True)
def user_list(request: HtmxRequest) -> HttpResponse:
    context = {
        "members": users.members(),
        "role_choices": ROLE_CHOICES,
        "sso": settings.OIDC_ENABLED,
    }
    return render(request, "accounts/users.html", context)


@never_cache  # the answer to a successful invitation holds a password
@require_http_methods(["GET", "POST"])
@permission_required("auth.add_user", raise_exception=True)
def user_invite(request: HtmxRequest) -> HttpResponse:
    form = InviteUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member, password = users.do_invite_user(by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            context = {"invited": member, "password": password, "role": form.cleaned_data["role"]}
            return render(request, "accounts/user_invite.html", context)
    return render(
        request, "accounts/user_invite.html", {"form": form, "sso": settings.OIDC_ENABLED}
    )


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def user_role(request: HtmxRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose one of the roles: viewer, operator, admin or none.")
    role = form.cleaned_data["role"]
    changed = users.do_change_role(member, by=request.user, role=role)
    return _user_row_or_list(
        request, member, f"{member} is now {role}." if changed else "Nothing changed."
    )


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def user_deactivate(request: HtmxRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    users.do_deactivate_user(member, by=request.user)
    return _user_row_or_list(request, member, f"{member} is deactivated and signed out.")


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def user_reactivate(request: HtmxRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    users.do_reactivate_user(member, by=request.user)
    return _user_row_or_list(request, member, f"{member} can sign in again.")


def _user_row_or_list(request: HtmxRequest, member: User, message: str) -> HttpResponse:
    if htmx_partial(request):
        context = {"member": users.get_member(member.pk), "role_choices": ROLE_CHOICES}
        return render(request, "accounts/users.html#row", context)
    messages.success(request, message)
    return redirect("users:list")
