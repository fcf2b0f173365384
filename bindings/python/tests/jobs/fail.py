from typing import Any


class PaymentDeclined(Exception):
    pass


def handle(params: Any, ctx: Any) -> Any:
    raise PaymentDeclined(f"card {params['card']} declined")
