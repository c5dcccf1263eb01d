"""`cobrador sandbox pay PAYMENT_ID`: pay a pending sandbox boleto or PIX and send its real signed
callback to COBRADOR_PUBLIC_URL, as a customer paying at the bank would cause."""

from cobrador.core.commandline import CommandFailed, check_encryption_key
from cobrador.gateways.sandbox import SandboxPayFailed, send_sandbox_payment_callback
from cobrador.payments.models import Payment


def sandbox_pay(args) -> int:
    check_encryption_key()
    try:
        payment = Payment.objects.select_related("gateway").get(public_id=args.payment_id)
    except Payment.DoesNotExist:
        raise CommandFailed(f"no payment {args.payment_id!r}") from None
    try:
        response = send_sandbox_payment_callback(payment)
    except SandboxPayFailed as exc:
        raise CommandFailed(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - httpx errors: the charge is paid, the callback can be sent again
        raise CommandFailed(f"the sandbox charge is paid but the callback could not be delivered "
                            f"({type(exc).__name__}: {exc}); run the command again to resend it") from None
    if not 200 <= response.status_code < 300:
        raise CommandFailed(f"the sandbox charge is paid but the callback was answered {response.status_code}; "
                            "run the command again to resend it")
    print(f"paid {payment.public_id} at the sandbox; callback delivered ({response.status_code})")
    return 0
