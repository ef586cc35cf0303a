"""Make the usual statuses valid for UCVNIs.

`nautobot_database_ready` fires at the end of every `nautobot-server migrate`,
so the link ends up in the migrated (and cached) database.
"""

STATUSES = {
    "Active": "4caf50",
    "Planned": "00bcd4",
    "Reserved": "00bcd4",
    "Deprecated": "f44336",
}


def link_statuses(sender, *, apps, **kwargs):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Status = apps.get_model("extras", "Status")
    UCVNI = apps.get_model("undercloud_vni", "UCVNI")
    content_type = ContentType.objects.get_for_model(UCVNI)
    for name, color in STATUSES.items():
        status, _ = Status.objects.get_or_create(name=name, defaults={"color": color})
        status.content_types.add(content_type)
