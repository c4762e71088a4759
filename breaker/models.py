"""Circuit breakers on SQS-triggered Lambda functions, their history and their probes."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from accounts.models import AwsAccount
from console import backoff

ALARM = "ALARM"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
validate_name = RegexValidator(
    NAME_PATTERN, "Use lower-case letters, digits, dots, dashes and underscores."
)
MAPPING_STABLE_STATES = {"Enabled", "Disabled"}
# The mapping states in which Lambda polls (or is about to poll) the queue.
MAPPING_POLLING_STATES = {"Enabled", "Enabling", "Creating", "Updating"}
HAND_OFF_PATIENCE = timedelta(minutes=5)
# ScalingConfig.MaximumConcurrency of an SQS event source mapping: 2 to 1000 (absent: no limit).
MIN_CONCURRENCY, MAX_CONCURRENCY = 2, 1000
DEFAULT_RAMP_STEPS = (2, 5, 20)


def default_ramp_steps() -> list[int]:
    return list(DEFAULT_RAMP_STEPS)


def validate_ramp_steps(value: object) -> None:
    """Whole numbers from 2 to 1000, each above the one before, at least one."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one step, for example 2, 5, 20.")
    if not all(isinstance(step, int) and not isinstance(step, bool) for step in value):
        raise ValidationError("Each step is a whole number.")
    if not all(MIN_CONCURRENCY <= step <= MAX_CONCURRENCY for step in value):
        raise ValidationError(
            f"Each step is from {MIN_CONCURRENCY} to {MAX_CONCURRENCY} (Lambda's limits)."
        )
    if any(later <= earlier for earlier, later in itertools.pairwise(value)):
        raise ValidationError("Each step must be above the one before.")


def max_concurrency_of(scaling: dict[str, int] | None) -> int | None:
    return (scaling or {}).get("MaximumConcurrency")


def alarm_name_of(alarm: str) -> str:
    """``arn:aws:cloudwatch:eu-west-1:111122223333:alarm:orders-errors`` -> ``orders-errors``;
    a plain name stays as it is (alarm names may themselves contain colons)."""
    if alarm.startswith("arn:") and ":alarm:" in alarm:
        return alarm.split(":alarm:", 1)[1]
    return alarm


class BreakerQuerySet(models.QuerySet["Breaker"]):
    def managed(self) -> BreakerQuerySet:
        return self.exclude(mode=Breaker.Mode.DISABLED)

    def may_probe(self, now: datetime) -> BreakerQuerySet:
        """The one rule of who may be probed now: half-open under automatic control, not broken,
        its next probe due, and nobody holding the probe lease (a lapsed lease is free again).
        Claims use it as a conditional update, so two workers never probe one breaker."""
        return self.filter(
            Q(next_probe_at__isnull=True) | Q(next_probe_at__lte=now),
            Q(probe_lease_until__isnull=True) | Q(probe_lease_until__lte=now),
            mode=Breaker.Mode.AUTO,
            state=Breaker.State.HALF_OPEN,
            broken="",
        )

    def attention_first(self) -> BreakerQuerySet:
        """Open, then half-open, then closed; by name within each."""
        order = models.Case(
            models.When(state=Breaker.State.OPEN, then=0),
            models.When(state=Breaker.State.HALF_OPEN, then=1),
            default=2,
        )
        return self.annotate(attention=order).order_by("attention", "name")

    def watching(
        self, *, account_id: str, region: str, alarm_name: str, alarm_arn: str
    ) -> list[Breaker]:
        """Breakers that list this alarm, by ARN or by name in the alarm's account and region.
        JSON containment is not portable to SQLite: the database narrows the rows with a text
        match on the list (the ARN ends with the name), Python keeps the exact matches."""
        rows = self.filter(account__account_id=account_id, region=region).select_related("account")
        if not set(alarm_name) & {'"', "\\"} and alarm_name.isprintable():  # stored as is in JSON
            rows = rows.filter(alarms__icontains=alarm_name)
        return [row for row in rows if row.watches(alarm_name=alarm_name, alarm_arn=alarm_arn)]


class Breaker(models.Model):
    class State(models.TextChoices):
        CLOSED = "closed", "closed"
        OPEN = "open", "open"
        HALF_OPEN = "half_open", "half-open"
        RAMPING = "ramping", "closing gradually"

    class Mode(models.TextChoices):
        AUTO = "auto", "automatic"
        FORCED_OPEN = "forced_open", "tripped by hand"
        DISABLED = "disabled", "not managed"

    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    account = models.ForeignKey(AwsAccount, on_delete=models.PROTECT, related_name="breakers")
    region = models.CharField(max_length=32)
    function_name = models.CharField(max_length=170)
    mapping_uuid = models.CharField("event source mapping UUID", max_length=36)
    queue_arn = models.CharField("queue ARN", max_length=300)
    queue_url = models.CharField("queue URL", max_length=500)
    alarms = models.JSONField(default=list, help_text="Alarm ARNs or names that open the breaker.")
    reports_batch_item_failures = models.BooleanField(default=False)

    state = models.CharField(max_length=16, choices=State.choices, default=State.CLOSED)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.AUTO)

    # Settings (the defaults of a new breaker).
    successes_to_close = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)]
    )
    probe_interval_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)]
    )
    backoff_seconds = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    backoff_cap_seconds = models.PositiveIntegerField(
        default=900, validators=[MinValueValidator(1)]
    )
    function_timeout_seconds = models.PositiveIntegerField(
        default=3, help_text="Read from the function's configuration; probes wait this long."
    )
    probe_visibility_timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="How long a probe hides its message; empty: the function's timeout + 30 s.",
    )
    close_when_queue_empty = models.BooleanField(
        default=True, help_text="An empty queue closes the breaker; otherwise probing goes on."
    )
    gradual_close = models.BooleanField(
        default=False,
        help_text="Close through a ramp of the mapping's maximum concurrency instead of at once.",
    )
    ramp_steps = models.JSONField(
        default=default_ramp_steps,
        blank=True,
        help_text="Maximum concurrency at each step of a gradual close (2 to 1000, rising); the "
        "mapping's own setting comes after the last.",
    )
    ramp_step_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(1)],
        help_text="How long the alarm must stay out of ALARM at each step before the next.",
    )

    # Counters and timers.
    half_open_successes = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_probe_at = models.DateTimeField(null=True, blank=True)

    # What the console last learnt from AWS.
    alarm_states = models.JSONField(
        default=dict, blank=True, help_text="Per alarm: state, reason, StateChangeTime applied."
    )
    mapping_state = models.CharField(max_length=16, blank=True)
    mapping_checked_at = models.DateTimeField(null=True, blank=True)
    mapping_error = models.TextField(blank=True, help_text="The last failed mapping change.")
    mapping_handed_off_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A mapping change handed to the worker and not done yet (the reconcile does "
        "not call its mapping drift meanwhile).",
    )
    broken = models.TextField(blank=True, help_text="Why the breaker cannot work (mapping gone).")
    mapping_max_concurrency = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The mapping's ScalingConfig.MaximumConcurrency as last seen.",
    )
    original_scaling = models.JSONField(
        null=True,
        blank=True,
        help_text="The mapping's ScalingConfig before a gradual close first changed it ({} for "
        "none); restored when the ramp ends, then forgotten. Empty: nothing to restore.",
    )

    # The ramp of a gradual close: which step, since when.
    ramp_step = models.PositiveSmallIntegerField(null=True, blank=True)
    ramp_step_since = models.DateTimeField(null=True, blank=True)

    # One probe at a time across every worker: a lease taken with a conditional update.
    probe_lease_until = models.DateTimeField(null=True, blank=True)
    probe_lease_owner = models.CharField(max_length=120, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    objects = BreakerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("trip_breaker", "Can trip and reset a breaker"),
            ("probe_breaker", "Can probe a breaker now"),
            ("manage_breaker", "Can turn the management of a breaker off and on"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(backoff_cap_seconds__gte=models.F("backoff_seconds")),
                name="breaker_backoff_cap_not_below_base",
                violation_error_message="The back-off cap cannot be below the back-off.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    # ---- one-row rules -------------------------------------------------------------------

    def clean(self) -> None:
        if self.gradual_close or self.ramp_steps != default_ramp_steps():
            try:
                validate_ramp_steps(self.ramp_steps)
            except ValidationError as exc:
                raise ValidationError({"ramp_steps": exc.messages}) from None
        visibility = self.probe_visibility_timeout_seconds
        if visibility is not None and not self.function_timeout_seconds < visibility <= 43_200:
            raise ValidationError(
                {
                    "probe_visibility_timeout_seconds": f"Must exceed the function's timeout "
                    f"({self.function_timeout_seconds} s) and be at most 43200 s (12 hours)."
                }
            )

    @property
    def alarm_names(self) -> list[str]:
        return [alarm_name_of(alarm) for alarm in self.alarms]

    def watches(self, *, alarm_name: str, alarm_arn: str) -> bool:
        """An ARN must match exactly; a plain name matches in the breaker's account and region
        (the caller filtered those)."""
        return any(
            alarm == alarm_arn if alarm.startswith("arn:") else alarm == alarm_name
            for alarm in self.alarms
        )

    def applied_change_time(self, alarm_name: str) -> datetime | None:
        entry = self.alarm_states.get(alarm_name) or {}
        value = entry.get("changed_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def in_alarm(self) -> bool:
        return any(entry.get("state") == ALARM for entry in self.alarm_states.values())

    @property
    def alarm_summary(self) -> str:
        """ALARM when any watched alarm is in ALARM, else the states seen (OK, INSUFFICIENT_DATA)."""
        states = {entry.get("state") for entry in self.alarm_states.values() if entry.get("state")}
        if ALARM in states:
            return ALARM
        if not states:
            return "not read yet"
        return "OK" if states == {"OK"} else "/".join(sorted(states))

    @property
    def alarm_words(self) -> str:
        """The summary in words (the code names stay in the badge's title)."""
        words = {ALARM: "in ALARM", "OK": "OK", "INSUFFICIENT_DATA": "insufficient data"}
        summary = self.alarm_summary
        return "/".join(words.get(part, part) for part in summary.split("/"))

    @property
    def alarm_reason(self) -> str:
        for entry in self.alarm_states.values():
            if entry.get("state") == ALARM:
                reason: str = entry.get("reason", "")
                return reason
        return ""

    @property
    def is_managed(self) -> bool:
        return self.mode != self.Mode.DISABLED

    @property
    def probe_visibility_timeout(self) -> int:
        """Longer than the function may run, so the message cannot reappear mid-probe."""
        return self.probe_visibility_timeout_seconds or self.function_timeout_seconds + 30

    @property
    def probe_read_timeout(self) -> int:
        return self.function_timeout_seconds + 10

    @property
    def probe_lease(self) -> timedelta:
        """Covers a receive, an invoke that runs to its timeout, a delete and the bookkeeping."""
        return timedelta(seconds=self.probe_read_timeout + 60)

    def next_backoff(self) -> timedelta:
        """The open time after one more failure: base, doubling, capped."""
        return backoff.after_failures(
            self.consecutive_failures + 1,
            base=timedelta(seconds=self.backoff_seconds),
            cap=timedelta(seconds=self.backoff_cap_seconds),
        )

    def backoff_ended(self, now: datetime) -> bool:
        """An open breaker whose back-off is over and whose alarms are quiet may probe again."""
        return (
            self.mode == self.Mode.AUTO
            and self.state == self.State.OPEN
            and not self.broken
            and self.next_probe_at is not None
            and self.next_probe_at <= now
            and not self.in_alarm
        )

    @property
    def mapping_should_poll(self) -> bool:
        return self.state in (self.State.CLOSED, self.State.RAMPING)

    # ---- gradual close -------------------------------------------------------------------

    @property
    def ramp_plan(self) -> list[int]:
        """The concurrency steps of this ramp: those below the mapping's original limit (a step
        at or above it would loosen nothing). The original setting follows the last."""
        original = max_concurrency_of(self.original_scaling)
        return [step for step in self.ramp_steps if original is None or step < original]

    @property
    def ramp_concurrency(self) -> int | None:
        """The maximum concurrency of the current step while ramping."""
        plan = self.ramp_plan
        if self.state != self.State.RAMPING or self.ramp_step is None or not plan:
            return None
        return plan[min(self.ramp_step, len(plan) - 1)]

    @property
    def scaling_wanted(self) -> dict[str, int] | None:
        """The ScalingConfig the mapping should have; ``None``: leave it as it is. While ramping,
        the step's limit; once closed after a ramp, the original (``{}`` removes the limit)."""
        if self.state == self.State.RAMPING:
            concurrency = self.ramp_concurrency
            return {"MaximumConcurrency": concurrency} if concurrency else None
        if self.state == self.State.CLOSED and self.original_scaling is not None:
            return dict(self.original_scaling)
        return None

    def ramp_step_due(self, now: datetime) -> bool:
        """The alarm stayed out of ALARM for a whole step: time for the next one."""
        return (
            self.mode == self.Mode.AUTO
            and self.state == self.State.RAMPING
            and not self.broken
            and not self.in_alarm
            and self.ramp_step_since is not None
            and now >= self.ramp_step_since + timedelta(seconds=self.ramp_step_seconds)
        )

    @property
    def next_ramp_step_at(self) -> datetime | None:
        if self.state != self.State.RAMPING or self.ramp_step_since is None:
            return None
        return self.ramp_step_since + timedelta(seconds=self.ramp_step_seconds)

    @property
    def original_scaling_text(self) -> str:
        if self.original_scaling is None:
            return "not recorded"
        original = max_concurrency_of(self.original_scaling)
        return "no limit" if original is None else f"at most {original} at once"

    @property
    def mapping_drifted(self) -> bool:
        """The mapping polls while the breaker says it must not (someone enabled it by hand).
        Not while the worker is making the change it was handed (see ``hand_off_pending``)."""
        return (
            self.is_managed
            and not self.mapping_should_poll
            and self.mapping_state in MAPPING_POLLING_STATES
            and self.mapping_handed_off_at is None
        )

    def hand_off_pending(self, now: datetime) -> bool:
        """A mapping change handed to the worker less than HAND_OFF_PATIENCE ago. Older than
        that, its task was lost with a worker: the reconcile treats the mapping as drift again."""
        return (
            self.mapping_handed_off_at is not None
            and self.mapping_handed_off_at > now - HAND_OFF_PATIENCE
        )

    @property
    def mapping_wanted(self) -> str:
        return "Enabled" if self.mapping_should_poll else "Disabled"

    @property
    def mapping_settling(self) -> bool:
        """The worker is bringing the mapping in line with the state (a trip, a reset or a
        close handed to it): the page says so and keeps refreshing until it is done."""
        return (
            self.is_managed
            and not self.broken
            and not self.mapping_error
            and (self.mapping_state != self.mapping_wanted or self.scaling_settling)
        )

    @property
    def scaling_settling(self) -> bool:
        wanted = self.scaling_wanted
        return wanted is not None and max_concurrency_of(wanted) != self.mapping_max_concurrency

    @property
    def settling_text(self) -> str:
        if self.mapping_state == self.mapping_wanted and self.scaling_settling:
            limit = max_concurrency_of(self.scaling_wanted)
            return f"setting the concurrency to {limit}…" if limit else "removing the limit…"
        return "enabling the mapping…" if self.mapping_should_poll else "disabling the mapping…"

    @property
    def badge(self) -> str:
        if self.broken:
            return "bad"
        return {"closed": "ok", "open": "bad", "half_open": "warn", "ramping": "warn"}[self.state]


class BreakerTransition(models.Model):
    """The history of a breaker: append-only, one row per state change or correction."""

    class Cause(models.TextChoices):
        ALARM = "alarm", "alarm"
        PROBE = "probe", "probe"
        MANUAL = "manual", "by hand"
        TIMER = "timer", "back-off ended"
        RECONCILE = "reconcile", "reconcile pass"
        DRIFT = "drift", "mapping changed outside the console"
        RAMP = "ramp", "gradual close"

    breaker = models.ForeignKey(Breaker, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, choices=Breaker.State.choices)
    to_state = models.CharField(max_length=16, choices=Breaker.State.choices)
    cause = models.CharField(max_length=16, choices=Cause.choices)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.breaker_id}: {self.from_state} -> {self.to_state} ({self.cause})"


class Probe(models.Model):
    class Outcome(models.TextChoices):
        PASSED = "passed", "passed"
        FAILED = "failed", "failed"
        NO_MESSAGE = "no_message", "no message"
        ERROR = "error", "error"

    breaker = models.ForeignKey(Breaker, on_delete=models.CASCADE, related_name="probes")
    at = models.DateTimeField(db_index=True)
    message_id = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    duration_ms = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True, help_text="Function error, batch item failure or error.")
    actor = models.CharField(max_length=150, default="worker")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.breaker_id} {self.at:%H:%M:%S} {self.outcome}"

    @property
    def badge(self) -> str:
        return {"passed": "ok", "failed": "bad", "no_message": "info", "error": "warn"}[
            self.outcome
        ]
