"""Provider hosts stopped being gateway options (an SSRF: a tenant could point charging, with the
provider's secret, at any address). The adapters no longer read them; this drops the stored values so
the API stops echoing them and an update does not trip over them."""

from django.db import migrations

HOST_OPTIONS = ("base_url", "jwks_url")


def drop_host_options(apps, schema_editor):
    GatewayConfig = apps.get_model("gateways", "GatewayConfig")
    changed = []
    for config in GatewayConfig.objects.only("pk", "options").iterator(chunk_size=1000):
        options = config.options or {}
        if any(name in options for name in HOST_OPTIONS):
            config.options = {k: v for k, v in options.items() if k not in HOST_OPTIONS}
            changed.append(config)
    GatewayConfig.objects.bulk_update(changed, ["options"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("gateways", "0004_drop_pattern_indexes"),
    ]

    operations = [
        migrations.RunPython(drop_host_options, migrations.RunPython.noop, elidable=True),
    ]
