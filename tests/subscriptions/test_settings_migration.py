"""renewal_prompt_days moved from notifications.NotificationSettings to subscriptions.SubscriptionSettings:
every organization keeps the value it had."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from cobrador.core import clock
from cobrador.organizations.models import Organization

BEFORE = [("subscriptions", "0004_trial_will_end_sent_for"), ("notifications", "0003_plural_labels")]
AFTER = [("subscriptions", "0005_subscription_settings"),
         ("notifications", "0004_renewal_prompt_days_moved_to_subscriptions")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_each_organizations_renewal_prompt_days():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        now = clock.now()
        organizations = old.get_model("organizations", "Organization").objects
        set_to_5 = organizations.create(name="Five", mode="test", created_at=now)
        never_set = organizations.create(name="Never", mode="test", created_at=now)
        old.get_model("notifications", "NotificationSettings").objects.create(
            organization_id=set_to_5.pk, renewal_prompt_days=5, updated_at=now, invoice_overdue_days=[1],
            card_expiring_days=[30], mandatory_types=[])

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)

        new = executor.loader.project_state(AFTER).apps
        copied = new.get_model("subscriptions", "SubscriptionSettings").objects.values_list(
            "organization_id", "renewal_prompt_days")
        assert list(copied) == [(set_to_5.pk, 5)]
        assert not Organization.objects.filter(pk=never_set.pk, subscription_settings__isnull=False).exists()
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
