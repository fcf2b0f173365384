"""Raises an exception of its own class."""


class PaymentDeclined(Exception):
    pass


def handle(params, ctx):
    _charge(params)


def _charge(params):
    raise PaymentDeclined("card %s declined" % params["card"])
