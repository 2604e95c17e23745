"""Views of the scenario shop: a login, a checkout that raises KeyError, a list running SQL."""
import logging

from django.contrib.auth import authenticate, login
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import Order

log = logging.getLogger("shop.views")

# The raw SQL of `orders`, as the tests expect to see it normalised (see clients.rs).
RAW_SQL = 'select customer, total_cents from "shop_order" where customer = %s and total_cents > 100 order by id'


@csrf_exempt
def login_view(request):
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    if user is None:
        return HttpResponse("bad credentials", status=403)
    login(request, user)
    return HttpResponse("ok")


@csrf_exempt
def checkout(request, order_id):
    log.info("checkout started for order %s", order_id)
    log.warning("inventory low for sku %s", "SKU-123")
    cart = {"SKU-123": 2}
    quantity = int(request.POST.get("qty", "1"))
    # unhandled: KeyError leaves the view -> Django answers 500 -> the client library reports it
    return HttpResponse(str(cart[request.POST["sku"]] * quantity))


def orders(request):
    Order.objects.create(customer="alice", total_cents=1999)
    Order.objects.create(customer="bob", total_cents=500)
    rows = list(Order.objects.filter(customer="alice", total_cents__gt=100).order_by("-created")[:10])
    with connection.cursor() as cur:
        cur.execute(RAW_SQL, ["alice"])
        raw = cur.fetchall()
        if connection.vendor == "postgresql":
            cur.execute("SELECT pg_sleep(0.05)")
    return JsonResponse({"alice": len(rows), "raw": len(raw)})
