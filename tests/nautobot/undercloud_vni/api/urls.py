from nautobot.apps.api import OrderedDefaultRouter

from . import views

router = OrderedDefaultRouter(view_name="Undercloud VNI")
router.register("ucvni-groups", views.UCVNIGroupViewSet)
router.register("ucvnis", views.UCVNIViewSet)

app_name = "undercloud_vni-api"
urlpatterns = router.urls
