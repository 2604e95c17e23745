"""URL routes of the scenario shop."""
from django.urls import path

from shop import views

urlpatterns = [
    path("login/", views.login_view),
    path("orders/<int:order_id>/checkout/", views.checkout),
    path("orders/", views.orders),
]
