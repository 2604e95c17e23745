"""A tiny piece of the test shop whose bug the notification tests report (a division by zero)."""


def average_price(prices):
    return sum(prices) / len(prices)


def checkout(prices):
    total = average_price(prices) * len(prices)
    return round(total, 2)
