"""Test stand-in for the private `undercloud-vni` Nautobot app.

oslo-nautobot's live tests run against a real Nautobot. The app that owns
UCVNIs in production is not public, so this package reproduces the part of its
REST contract that oslo-nautobot relies on (see tests/nautobot/README.md).
"""

from nautobot.apps import NautobotAppConfig


class UndercloudVniConfig(NautobotAppConfig):
    name = "undercloud_vni"
    verbose_name = "Undercloud VNI (oslo-nautobot test stand-in)"
    description = "UCVNI groups and UCVNIs, enough of them for oslo-nautobot's live tests."
    version = "0.1.0"
    author = "oslo-nautobot"
    base_url = "undercloud-vni"
    min_version = "3.0.0"
    max_version = "3.99"

    def ready(self):
        super().ready()
        from nautobot.core.signals import nautobot_database_ready

        from .signals import link_statuses

        nautobot_database_ready.connect(link_statuses, sender=self)


config = UndercloudVniConfig
