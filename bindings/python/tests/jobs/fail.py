class PaymentDeclined(Exception):
    pass


def handle(params, ctx):
    raise PaymentDeclined(f"card {params['card']} declined")
