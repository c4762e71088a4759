from django.http import HttpRequest

from accounts.models import AwsAccount, Organization
from console import dashboard


@dashboard.register
def accounts_tile(request: HttpRequest) -> dashboard.Tile | None:
    if not request.user.has_perm("accounts.view_awsaccount"):
        return None
    accounts = list(AwsAccount.objects.enabled())
    failing = [account for account in accounts if account.verification_state != "ok"]
    organization = Organization.objects.filter(last_read_ok=False).first()
    return dashboard.Tile(
        title="AWS accounts",
        template="accounts/tile.html",
        order=900,
        link="/accounts/",
        attention=organization is not None
        or any(account.verification_state == "failed" for account in accounts),
        context={
            "enabled": len(accounts),
            "unverified": failing,
            "organization_error": organization.last_read_error if organization else "",
        },
    )
