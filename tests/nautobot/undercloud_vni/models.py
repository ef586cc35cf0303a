from django.db import models

from nautobot.apps.models import PrimaryModel, StatusField, extras_features


@extras_features("custom_fields", "graphql", "relationships", "webhooks")
class UCVNIGroup(PrimaryModel):
    name = models.CharField(max_length=255, unique=True)
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "UCVNI group"

    def __str__(self):
        return self.name


@extras_features("custom_fields", "graphql", "relationships", "statuses", "webhooks")
class UCVNI(PrimaryModel):
    name = models.CharField(max_length=255)
    status = StatusField(blank=False, null=False)
    tenant = models.ForeignKey(
        to="tenancy.Tenant",
        on_delete=models.PROTECT,
        related_name="ucvnis",
        blank=True,
        null=True,
    )
    ucvni_group = models.ForeignKey(
        to=UCVNIGroup,
        on_delete=models.PROTECT,
        related_name="ucvnis",
    )
    # verbose_name matters: it is part of the unique_together error text.
    ucvni_id = models.PositiveIntegerField(verbose_name="UCVNI_ID")
    ucvni_type = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["ucvni_group", "ucvni_id"]
        unique_together = [["ucvni_group", "ucvni_id"]]
        # "UCVNI with this Id already exists." / "UCVNI with this Ucvni group and UCVNI_ID already exists."
        verbose_name = "UCVNI"
        verbose_name_plural = "UCVNIs"

    def __str__(self):
        return self.name
